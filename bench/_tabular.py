"""What bench/automl.py runs per stream besides single candidates: our online selector, and River's
own selectors over the same candidates (wrapped as River classifiers) on the same features."""

from __future__ import annotations

import numpy as np
from river import bandit, base, metrics, model_selection

from learners.tabular.bandit import OnlineSelector
from learners.tabular.candidates import CandidateSpec, default_candidates
from learners.tabular.prequential import prequential_selector

RIVER_UCB_DELTA = 1.0  # River's documented example value; burn-in: every candidate learns 100 rows first
RIVER_BURN_IN = 100


class RiverCandidate(base.Classifier):
    """One of our candidates behind River's ``learn_one`` / ``predict_proba_one``."""

    def __init__(self, spec: dict, inputs: int, classes: int, seed: int = 0) -> None:
        self.spec, self.inputs, self.classes, self.seed = spec, inputs, classes, seed
        self.model = CandidateSpec.from_json(spec).build(inputs, classes, seed)

    def _row(self, x: dict) -> np.ndarray:
        return np.fromiter((x[i] for i in range(self.inputs)), np.float32, self.inputs)[None]

    def learn_one(self, x, y):
        self.model.learn_many(self._row(x), np.asarray([y]))

    def predict_proba_one(self, x):
        s = self.model.scores(self._row(x))[0].astype(np.float64)
        p = np.exp(s - s.max())
        p /= p.sum()
        return {c: float(p[c]) for c in range(self.classes)}


def selection_rows(Z: np.ndarray, y: np.ndarray, classes: int, start: int, seed: int):
    """Our selector's progressive accuracy, its switches, and the share of candidate updates spent."""
    sel = OnlineSelector([s.build(Z.shape[1], classes, seed) for s in default_candidates()])
    switches: list = []
    acc = prequential_selector(sel, Z, y, start, switches.append)
    return acc, switches, sel.updates / (len(Z) * len(sel.models))


def river_selectors(Z: np.ndarray, y: np.ndarray, classes: int, start: int, seed: int) -> dict[str, float]:
    def candidates():
        return [RiverCandidate(s.to_json(), Z.shape[1], classes, seed) for s in default_candidates()]

    selectors = {
        "river-bandit-ucb": model_selection.BanditClassifier(
            candidates(), metrics.Accuracy(), bandit.UCB(delta=RIVER_UCB_DELTA, burn_in=RIVER_BURN_IN, seed=seed)),
        "river-halving": model_selection.SuccessiveHalvingClassifier(
            candidates(), metrics.Accuracy(), budget=start * len(default_candidates()), eta=2),
    }
    out = {}
    for name, selector in selectors.items():
        hits = []
        for i, (z, t) in enumerate(zip(Z, y)):
            x = dict(enumerate(z.tolist()))
            if i >= start:
                hits.append(selector.predict_one(x) == int(t))
            selector.learn_one(x, int(t))
        out[name] = float(np.mean(hits))
    return out
