"""Online model selection: shadow candidates all predict every row and are scored prequentially
(test, then train) over a sliding window (River's ``Rolling``); update compute goes only to the
candidates that can still win, a bandit's confidence-bound rule (successive elimination, Even-Dar
et al. 2006): a candidate stops learning once its paired score gap to the champion is below zero
with 99% confidence, and every candidate learns again when River's ADWIN sees the champion's error
change (after a drift the loser may be the winner). A candidate that beats the champion by
``margin`` over the window takes over; the switch is a typed :class:`Switch` for the caller's events.

>>> import numpy as np
>>> from learners.tabular.candidates import CandidateSpec, Family
>>> gen = np.random.default_rng(0)
>>> specs = [CandidateSpec(Family.LINEAR, lr=1e-4), CandidateSpec(Family.LINEAR, lr=0.1)]
>>> sel = OnlineSelector([s.build(2, 2, 0) for s in specs], window=100)
>>> for x in gen.normal(size=(600, 2)).astype(np.float32):
...     _ = sel.predict_one(x); _ = sel.learn_one(x, int(x[0] + x[1] > 0))
>>> sel.champion_name, sel.learning
('linear(lr=0.1)', [False, True])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from river import drift, stats, utils

from .candidates import OnlineModel

Z_99 = 2.576  # one-sided bound used to stop a candidate's learning


@dataclass(frozen=True)
class Switch:
    """A challenger took over from the champion at ``row`` (windowed scores at that moment)."""

    row: int
    before: str
    after: str
    score_before: float
    score_after: float


class OnlineSelector:
    """Champion and challengers over one stream; ``learning[i]``: whether candidate ``i`` still
    gets update compute. ``eliminate=False`` trains every candidate on every row."""

    def __init__(self, models: Sequence[OnlineModel], window: int = 500, margin: float = 0.01,
                 eliminate: bool = True, champion: int = 0, min_rows: int | None = None) -> None:
        self.models = list(models)
        self.min_rows = window // 2 if min_rows is None else min_rows  # rows scored before any decision
        self.window, self.margin, self.eliminate = window, margin, eliminate
        self.champion = champion
        self.scores = [utils.Rolling(stats.Mean, window_size=window) for _ in self.models]
        self._reset_gaps()
        self.learning = [True] * len(self.models)
        self.detector = drift.ADWIN()
        self.row = 0
        self.updates = 0  # candidate updates spent, to compare with training every candidate
        self._preds: list | None = None

    def _reset_gaps(self) -> None:
        """Paired score differences, champion minus candidate, over the window."""
        self.gaps = [utils.Rolling(stats.Var, window_size=self.window) for _ in self.models]
        self.gap_means = [utils.Rolling(stats.Mean, window_size=self.window) for _ in self.models]
        self.paired = 0

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
        rewards = [self._reward(p, y) for p in preds]
        for i, r in enumerate(rewards):
            self.scores[i].update(r)
            self.gaps[i].update(rewards[self.champion] - r)
            self.gap_means[i].update(rewards[self.champion] - r)
        self.row += 1
        self.paired += 1
        self.detector.update(1.0 - rewards[self.champion] if self.models[0].outputs else -rewards[self.champion])
        if self.detector.drift_detected:
            self.learning = [True] * len(self.models)
        for i, model in enumerate(self.models):
            if self.learning[i] or i == self.champion:
                model.learn_many(x[None], np.asarray([y]))
                self.updates += 1
        return self._decide()

    def _decide(self) -> Switch | None:
        if self.row < self.min_rows:
            return None
        n = min(self.paired, self.window)
        if self.eliminate and n >= self.min_rows:
            for i in range(len(self.models)):
                if i != self.champion and self.learning[i]:
                    sd = math.sqrt(max(self.gaps[i].get(), 0.0) / n)
                    if self.gap_means[i].get() - Z_99 * sd > 0:
                        self.learning[i] = False
        means = np.array([s.get() for s in self.scores])
        best = int(np.argmax(means))
        if best != self.champion and means[best] > means[self.champion] + self.margin:
            switch = Switch(self.row, self.champion_name, self.models[best].spec.name,
                            float(means[self.champion]), float(means[best]))
            self.champion = best
            self.learning[best] = True
            self._reset_gaps()  # they were measured against the old champion
            return switch
        return None
