"""Choose the feature pipeline: each step is tried in turn on top of those already kept and is kept
only when it raises the held-out score of a probe learner (the default learner, trained on the
earlier rows, scored on the later ones, as a stream would be). A step that does not help is left
out, which is why feature engineering cannot cost more than noise.

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
from .importance import permutation_importance, score
from .pipeline import FeaturePipeline, Step

ORDER = (Step.STANDARDISE, Step.LOG, Step.MISSING, Step.PRODUCTS, Step.SELECT)
TOP_FOR_PRODUCTS = 4  # products of every pair among this many most important features
KEEP_ABOVE = 0.001  # a feature survives selection when shuffling it costs more than this


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
    importance: np.ndarray  # of the chosen pipeline's output features, on the held-out rows


def _probe(pipeline: FeaturePipeline, X_train, y_train, X_hold, y_hold, classes: int, seed: int,
           probe: CandidateSpec, epochs: int = 2):
    model = probe.build(pipeline.width, classes, seed)
    Z = pipeline.transform(X_train)
    for _ in range(epochs):
        model.learn_many(Z, y_train)
    Zh = pipeline.transform(X_hold)
    return model, score(model, Zh, y_hold), Zh


def choose_pipeline(X: np.ndarray, y: np.ndarray, classes: int, seed: int = 0, holdout: float = 0.3,
                    probe: CandidateSpec = DEFAULT_LEARNER) -> GateReport:
    """Greedy forward selection of steps in :data:`ORDER` on ``X``'s rows (earlier rows train the
    probe, the last ``holdout`` share scores it); ``classes`` 0 means regression."""
    X = np.asarray(X, np.float32)
    cut = max(1, int(len(X) * (1 - holdout)))
    Xt, yt, Xh, yh = X[:cut], y[:cut], X[cut:], y[cut:]
    kept: list[Step] = []
    pairs = keep = None
    pipe = FeaturePipeline.fit(Xt, ())
    model, best, Zh = _probe(pipe, Xt, yt, Xh, yh, classes, seed, probe)
    trials = []
    for step in ORDER:
        if step is Step.MISSING and not np.isnan(X).any():
            continue
        try_pairs, try_keep = pairs, keep
        if step in (Step.PRODUCTS, Step.SELECT):
            importance = permutation_importance(model, Zh, yh, seed=seed)
            if step is Step.PRODUCTS:
                top = np.argsort(-importance)[: min(TOP_FOR_PRODUCTS, len(importance))]
                try_pairs = np.array(list(combinations(sorted(top), 2)), np.int64).reshape(-1, 2)
                if not len(try_pairs):
                    continue
            else:
                try_keep = importance > KEEP_ABOVE
                if try_keep.all() or not try_keep.any():
                    continue
        candidate = FeaturePipeline.fit(Xt, tuple(kept + [step]), try_pairs, try_keep)
        cand_model, got, cand_Zh = _probe(candidate, Xt, yt, Xh, yh, classes, seed, probe)
        trials.append(StepTrial(step, best, got, got > best))
        if got > best:
            kept.append(step)
            pairs, keep, pipe, model, best, Zh = try_pairs, try_keep, candidate, cand_model, got, cand_Zh
    final = FeaturePipeline.fit(X, tuple(kept), pairs, keep)
    return GateReport(final, tuple(trials), permutation_importance(model, Zh, yh, seed=seed))
