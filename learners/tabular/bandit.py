"""Online model selection: shadow candidates all predict every row and are scored prequentially
(test, then train) over a sliding window (River's ``Rolling`` mean); a UCB bandit spends the
update compute on the promising ones; a candidate that beats the champion by ``margin`` over the
window takes over, and the switch is returned as a typed :class:`Switch` for the caller's events.

>>> import numpy as np
>>> from learners.tabular.candidates import CandidateSpec, Family
>>> gen = np.random.default_rng(0)
>>> specs = [CandidateSpec(Family.LINEAR, lr=1e-4), CandidateSpec(Family.LINEAR, lr=0.1)]
>>> sel = OnlineSelector([s.build(2, 2, 0) for s in specs], window=100)
>>> for x in gen.normal(size=(600, 2)).astype(np.float32):
...     _ = sel.predict_one(x); _ = sel.learn_one(x, int(x[0] + x[1] > 0))
>>> sel.champion_name
'linear(lr=0.1)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from river import stats, utils

from .candidates import OnlineModel


@dataclass(frozen=True)
class Switch:
    """A challenger took over from the champion at ``row`` (windowed scores at that moment)."""

    row: int
    before: str
    after: str
    score_before: float
    score_after: float


class OnlineSelector:
    """Champion and challengers over one stream. ``train_per_row``: how many candidates learn each
    row (the champion always does; the rest by UCB index); ``None`` trains all."""

    def __init__(self, models: Sequence[OnlineModel], train_per_row: int | None = None, window: int = 500,
                 margin: float = 0.01, exploration: float = 0.2, champion: int = 0) -> None:
        self.models = list(models)
        self.train_per_row = len(self.models) if train_per_row is None else max(1, min(train_per_row, len(self.models)))
        self.window, self.margin, self.exploration = window, margin, exploration
        self.champion = champion
        self.scores = [utils.Rolling(stats.Mean, window_size=window) for _ in self.models]
        self.trained = np.zeros(len(self.models))
        self.row = 0
        self._preds: list | None = None

    @property
    def champion_name(self) -> str:
        return self.models[self.champion].spec.name

    def predict_one(self, x: np.ndarray):
        """The champion's prediction; every candidate's is kept for scoring in :meth:`learn_one`."""
        self._preds = [m.predict_many(x[None])[0] for m in self.models]
        return self._preds[self.champion]

    def _reward(self, pred, y) -> float:
        return float(pred == y) if self.models[0].outputs else -float((pred - y) ** 2)

    def learn_one(self, x: np.ndarray, y) -> Switch | None:
        preds = self._preds if self._preds is not None else [m.predict_many(x[None])[0] for m in self.models]
        self._preds = None
        for s, p in zip(self.scores, preds):
            s.update(self._reward(p, y))
        self.row += 1
        means = np.array([s.get() for s in self.scores])
        bonus = self.exploration * np.sqrt(2 * math.log(self.row + 1) / np.maximum(self.trained, 1))
        order = [i for i in np.argsort(-(means + bonus), kind="stable") if i != self.champion]
        for i in [self.champion] + order[: self.train_per_row - 1]:
            self.models[i].learn_many(x[None], np.asarray([y]))
            self.trained[i] += 1
        best = int(np.argmax(means))
        if best != self.champion and self.row >= self.window // 2 and means[best] > means[self.champion] + self.margin:
            switch = Switch(self.row, self.champion_name, self.models[best].spec.name,
                            float(means[self.champion]), float(means[best]))
            self.champion = best
            return switch
        return None
