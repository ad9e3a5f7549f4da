"""Offline model selection by successive halving (Jamieson and Talwalkar, 2016): every candidate
learns the first rows, the better half (``1/eta``) goes on to learn twice as many, and so on, each
rung scored on the same held-out rows; the leaderboard records every rung.

>>> import numpy as np
>>> from learners.tabular.candidates import default_candidates
>>> gen = np.random.default_rng(0)
>>> X = gen.normal(size=(400, 3)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
>>> board = successive_halving(default_candidates(), X[:300], y[:300], X[300:], y[300:], classes=2)
>>> board[0].rows, board[0].score > 0.9
(300, True)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .candidates import CandidateSpec, OnlineModel
from .importance import score


@dataclass(frozen=True)
class Rung:
    """One candidate's held-out score after learning ``rows`` rows."""

    name: str
    spec: CandidateSpec
    rung: int
    rows: int
    score: float


def successive_halving(specs: Sequence[CandidateSpec], X: np.ndarray, y: np.ndarray, X_hold: np.ndarray,
                       y_hold: np.ndarray, classes: int, eta: int = 2, seed: int = 0,
                       on_rung: Callable[[Rung], None] | None = None, deadline: float | None = None,
                       ) -> list[Rung]:
    """The leaderboard, best first: the last rung each candidate reached. Candidates keep learning
    where they stopped, so a rung costs only its new rows. ``deadline`` (``time.monotonic()``)
    ends the search early with the rungs reached so far."""
    rounds = max(1, math.ceil(math.log(max(len(specs), 1), eta))) + 1
    alive: list[tuple[CandidateSpec, OnlineModel]] = [(s, s.build(X.shape[1], classes, seed)) for s in specs]
    seen = 0
    last: dict[str, Rung] = {}
    for r in range(rounds):
        rows = len(X) if r == rounds - 1 else max(1, len(X) // eta ** (rounds - 1 - r))
        results = []
        for spec, model in alive:
            model.learn_many(X[seen:rows], y[seen:rows])
            rung = Rung(spec.name, spec, r, rows, score(model, X_hold, y_hold))
            last[spec.name] = rung
            results.append((rung.score, spec.name, spec, model))
            if on_rung:
                on_rung(rung)
        seen = rows
        results.sort(key=lambda t: (-t[0], t[1]))
        if r == rounds - 1 or (deadline is not None and time.monotonic() > deadline):
            break
        alive = [(spec, model) for _, _, spec, model in results[: max(1, math.ceil(len(results) / eta))]]
    return sorted(last.values(), key=lambda g: (-g.rows, -g.score, g.name))
