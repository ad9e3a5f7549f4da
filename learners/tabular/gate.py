"""Choose the feature pipeline: each step is tried in turn on top of those already kept and is kept
only when it raises the held-out score of a probe learner by more than :data:`MARGIN`. The probe is
the default learner, run test-then-train over the rows as a stream would run it (every row after a
short burn-in is held out once, before it is learned), with two seeds; a step that does not clearly
help is left out, which is why feature engineering cannot cost more than noise.

>>> import numpy as np
>>> gen = np.random.default_rng(0)
>>> X = np.c_[gen.normal(size=600) * 1000, gen.normal(size=600)]
>>> y = (X[:, 0] / 1000 + X[:, 1] > 0).astype(int)
>>> report = choose_pipeline(X, y, classes=2, seed=0)
>>> Step.STANDARDISE in report.pipeline.steps
True
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .candidates import DEFAULT_LEARNER, CandidateSpec
from .importance import permutation_importance
from .pipeline import FeaturePipeline, Step
from .prequential import prequential

ORDER = (Step.STANDARDISE, Step.LOG, Step.MISSING, Step.PRODUCTS, Step.SELECT)
TOP_FOR_PRODUCTS = 4  # products of every pair among this many most important features
KEEP_ABOVE = 0.001  # a feature survives selection when shuffling it costs more than this
MARGIN = 0.0025  # a step must raise the probe's score by more than this (a quarter point) to be kept
PROBE_SEEDS = 2


@dataclass(frozen=True)
class StepTrial:
    step: Step
    score_without: float
    score_with: float
    kept: bool


@dataclass(frozen=True)
class GateReport:
    pipeline: FeaturePipeline  # fitted on all the rows it was chosen on
    trials: tuple[StepTrial, ...]


def step_arguments(step: Step, importance: np.ndarray) -> np.ndarray | None:
    """What a step that needs importance takes: the pairs to multiply (``PRODUCTS``) or the mask of
    features to keep (``SELECT``); ``None`` when the step would change nothing."""
    if step is Step.PRODUCTS:
        top = np.argsort(-importance)[: min(TOP_FOR_PRODUCTS, len(importance))]
        pairs = np.array(list(combinations(sorted(top), 2)), np.int64).reshape(-1, 2)
        return pairs if len(pairs) else None
    keep = importance > KEEP_ABOVE
    return None if keep.all() or not keep.any() else keep


def _probe(pipeline: FeaturePipeline, X, y, burn_in: int, classes: int, seed: int, probe: CandidateSpec):
    """Mean test-then-train score over rows ``burn_in:`` for :data:`PROBE_SEEDS` seeds; the last
    model and the held-out rows' features (for importance)."""
    Z = pipeline.transform(X)
    scores = []
    for s in range(seed, seed + PROBE_SEEDS):
        model = probe.build(pipeline.width, classes, s)
        scores.append(prequential(model, Z, y, burn_in))
    return model, float(np.mean(scores)), Z[burn_in:]


def choose_pipeline(X: np.ndarray, y: np.ndarray, classes: int, seed: int = 0, burn_in: float = 0.2,
                    probe: CandidateSpec = DEFAULT_LEARNER) -> GateReport:
    """Greedy forward selection of steps in :data:`ORDER` on ``X``'s rows (the first ``burn_in``
    share only trains the probe; every later row is scored before it is learned); ``classes`` 0
    means regression. Statistics are fitted on all the rows, as the stream's would be by then."""
    X = np.asarray(X, np.float32)
    start = max(1, int(len(X) * burn_in))
    yh = y[start:]
    kept: list[Step] = []
    pairs = keep = None
    model, best, Zh = _probe(FeaturePipeline.fit(X, ()), X, y, start, classes, seed, probe)
    trials = []
    for step in ORDER:
        if step is Step.MISSING and not np.isnan(X).any():
            continue
        try_pairs, try_keep = pairs, keep
        if step in (Step.PRODUCTS, Step.SELECT):
            found = step_arguments(step, permutation_importance(model, Zh, yh, seed=seed))
            if found is None:
                continue
            try_pairs, try_keep = (found, keep) if step is Step.PRODUCTS else (pairs, found)
        candidate = FeaturePipeline.fit(X, tuple(kept + [step]), try_pairs, try_keep)
        cand_model, got, cand_Zh = _probe(candidate, X, y, start, classes, seed, probe)
        trials.append(StepTrial(step, best, got, got > best + MARGIN))
        if got > best + MARGIN:
            kept.append(step)
            pairs, keep, model, best, Zh = try_pairs, try_keep, cand_model, got, cand_Zh
    final = FeaturePipeline.fit(X, tuple(kept), pairs, keep)
    return GateReport(final, tuple(trials))
