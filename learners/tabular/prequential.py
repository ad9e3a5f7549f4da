"""Progressive (test-then-train) evaluation of tabular learners on a stream: every row is first
predicted, then learned; only rows from ``start`` on count, so every method learns the same
warm-up rows and is judged on the same later ones.

>>> import numpy as np
>>> from learners.tabular.candidates import CandidateSpec, Family
>>> gen = np.random.default_rng(0)
>>> X = gen.normal(size=(500, 2)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
>>> Z = streamed_features(FeaturePipeline.fit(X[:100]), X)
>>> acc = prequential(CandidateSpec(Family.LINEAR, lr=0.1).build(2, 2, 0), Z, y, start=100)
>>> acc > 0.9
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .bandit import OnlineSelector, Switch
from .candidates import OnlineModel
from .pipeline import FeaturePipeline


def streamed_features(pipeline: FeaturePipeline, X: np.ndarray, chunk: int = 1) -> np.ndarray:
    """Rows as the stream sees them: each chunk transformed with the statistics of the rows before
    it, then folded into them (running standardisation). ``pipeline`` is not changed."""
    p = pipeline.copy()
    out = np.empty((len(X), p.width), np.float32)
    for i in range(0, len(X), chunk):
        out[i : i + chunk] = p.transform(X[i : i + chunk])
        p.update(X[i : i + chunk])
    return out


def _hit(pred, y, classification: bool) -> float:
    return float(pred == y) if classification else -float((pred - y) ** 2)


def prequential(model: OnlineModel, Z: np.ndarray, y: np.ndarray, start: int = 0) -> float:
    """Accuracy (or minus the MSE) of ``model`` over rows ``start:``, learning every row."""
    hits = []
    for i in range(len(Z)):
        if i >= start:
            hits.append(_hit(model.predict_many(Z[i : i + 1])[0], y[i], bool(model.outputs)))
        model.learn_many(Z[i : i + 1], y[i : i + 1])
    return float(np.mean(hits)) if hits else float("nan")


def prequential_selector(selector: OnlineSelector, Z: np.ndarray, y: np.ndarray, start: int = 0,
                         on_switch: Callable[[Switch], None] | None = None) -> float:
    """The same for an :class:`OnlineSelector`: the champion's prediction counts."""
    hits = []
    classification = bool(selector.models[0].outputs)
    for i in range(len(Z)):
        pred = selector.predict_one(Z[i])
        if i >= start:
            hits.append(_hit(pred, y[i], classification))
        switch = selector.learn_one(Z[i], y[i])
        if switch is not None and on_switch is not None:
            on_switch(switch)
    return float(np.mean(hits)) if hits else float("nan")
