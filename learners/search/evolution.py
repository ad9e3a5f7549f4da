"""Regularized evolution (Real et al., 2019): a population of evaluated points; each step samples a
few members, mutates the best of them in one parameter, evaluates the child and retires the
*oldest* member (not the worst), so a lucky evaluation cannot stay in the population forever.
Works on any :class:`SearchSpace`, so the same loop searches a hyperparameter space, a backbone
genome or a tabular benchmark.

>>> space = SearchSpace.from_dict({"a": {"type": "categorical", "choices": [0, 1, 2, 3]},
...                                "b": {"type": "int", "low": 0, "high": 9}})
>>> history = regularized_evolution(space, lambda p: -abs(p["a"] - 2) - abs(p["b"] - 7), budget=60, seed=0)
>>> max(history, key=lambda h: h[1])[0]
{'a': 2, 'b': 7}
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable

import numpy as np

from .space import Param, SearchSpace


def mutate(space: SearchSpace, params: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A copy of ``params`` with one parameter changed (redrawn until it differs, where it can)."""
    child = dict(params)
    param: Param = space.params[int(rng.integers(len(space.params)))]
    for _ in range(16):
        value = param.sample(rng)
        if value != params[param.name]:
            break
    child[param.name] = value
    return child


def regularized_evolution(space: SearchSpace, evaluate: Callable[[dict[str, Any]], float], budget: int,
                          population: int = 20, sample: int = 5, seed: int = 0,
                          on_evaluation: Callable[[dict[str, Any], float], None] | None = None,
                          budget_s: float | None = None) -> list[tuple[dict, float]]:
    """Maximise ``evaluate`` with ``budget`` evaluations (and, with ``budget_s``, no new one after
    that many seconds); returns every ``(params, value)`` in order."""
    deadline = None if budget_s is None else time.perf_counter() + budget_s

    def more() -> bool:
        return len(history) < budget and (deadline is None or time.perf_counter() < deadline)

    rng = np.random.default_rng(seed)
    history: list[tuple[dict, float]] = []
    alive: deque[tuple[dict, float]] = deque()

    def record(params: dict[str, Any]) -> tuple[dict, float]:
        value = float(evaluate(params))
        history.append((params, value))
        if on_evaluation:
            on_evaluation(params, value)
        return params, value

    while more() and len(alive) < population:
        alive.append(record(space.sample(rng)))
    while more():
        picks = [alive[int(i)] for i in rng.integers(len(alive), size=min(sample, len(alive)))]
        parent = max(picks, key=lambda member: member[1])
        alive.append(record(mutate(space, parent[0], rng)))
        alive.popleft()
    return history
