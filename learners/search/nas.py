"""Architecture search for a task's backbone, at the hand-picked backbone's parameter count:
regularized evolution over a discrete genome (images: depth, kernel, pooling, residual
connections, embedding size; flat features: depth, activation, residual connections), or DARTS
over a cell (images). Widths are not searched: each candidate gets the width that brings its
parameter count nearest the hand-picked backbone's (Conv-4 for images, the 40-40 MLP for sine),
so a found backbone wins by its shape, not by its size. The result is a backbone spec (JSON) that
``meta-train``, the registry and the workers build like any other.

Short candidate trainings rank backbones noisily (three seeds of one backbone differ more than
backbones do), so with ``finalists`` the search ends in a last rung of successive halving: its best
few genomes train again for ``final_s`` seconds, as long as the final model will, and the best of
them there is the answer.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..backbones import build_backbone
from ..cells import parameter_count
from ..errors import ConfigError
from ..registry import default_config, merge
from .darts import darts_search
from .evolution import regularized_evolution
from .objective import Fidelity, MetaObjective
from .space import SearchSpace

GENOME_SPACE = SearchSpace.from_dict({
    "depth": {"type": "int", "low": 2, "high": 5}, "kernel": {"type": "categorical", "choices": [3, 5]},
    "pool": {"type": "categorical", "choices": ["max", "avg"]}, "residual": {"type": "categorical", "choices": [False, True]},
    "embedding": {"type": "categorical", "choices": [0, 64, 128]},
})
MLP_GENOME_SPACE = SearchSpace.from_dict({
    "layers": {"type": "int", "low": 1, "high": 6}, "activation": {"type": "categorical", "choices": ["relu", "tanh", "silu", "elu"]},
    "residual": {"type": "categorical", "choices": [False, True]}, "layer_norm": {"type": "categorical", "choices": [False, True]},
})
METHODS = ("evolution", "darts", "random")  # random: the baseline, random genomes at the same budget


def cardinality(space: SearchSpace) -> int:
    """How many distinct points a discrete space holds."""
    n = 1
    for p in space.params:
        n *= len(p.choices) if p.kind == "categorical" else int(p.high - p.low) // (p.step or 1) + 1
    return n


def base_config(task: str) -> dict[str, Any]:
    """The config whose backbone is searched: ProtoNet for images (as the default recipe), MAML for sine."""
    return default_config(task, "maml" if task == "sine" else "protonet")


def handpicked(task: str) -> dict[str, Any]:
    return dict(base_config(task)["backbone"])


def fit_width(make: Callable[[int], dict[str, Any]], target: int, low: int = 4, high: int = 512) -> dict[str, Any]:
    """The spec ``make(width)`` whose parameter count is nearest ``target`` (counts grow with width)."""
    best, best_gap = None, None
    lo, hi = low, high
    while lo <= hi:  # binary search for the crossing, then keep the nearer neighbour
        mid = (lo + hi) // 2
        n = parameter_count(build_backbone(make(mid)))
        gap = abs(n - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = make(mid), gap
        if n < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def genome_spec(task: str, genome: dict[str, Any], target: int) -> dict[str, Any]:
    if task == "sine":
        return fit_width(lambda w: {"name": "mlp_genome", "hidden": w, "layers": genome["layers"], "activation": genome["activation"],
                                    "residual": genome["residual"], "layer_norm": genome["layer_norm"]}, target)
    image = handpicked(task)
    return fit_width(lambda w: {"name": "genome", "depth": genome["depth"], "width": w, "kernel": genome["kernel"],
                                "pool": genome["pool"], "residual": genome["residual"], "embedding": genome["embedding"],
                                "image_size": image["image_size"], "bn_running_stats": image.get("bn_running_stats", False)},
                     target)


@dataclass
class NasResult:
    method: str
    spec: dict[str, Any]
    parameters: int
    handpicked_parameters: int
    evaluations: int
    seconds: float
    best_error: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    genome: dict[str, Any] | None = None


def with_backbone(task: str, spec: dict[str, Any], seed: int = 0, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (default :func:`base_config`) with the backbone ``spec``: a base that holds out
    report alphabets (``test_alphabets``) keeps them out of every candidate's training."""
    cfg = copy.deepcopy(base) if base is not None else base_config(task)
    cfg["backbone"] = dict(spec)
    return merge(cfg, seed=seed)


def search_architecture(task: str, method: str = "evolution", *, budget_s: float | None = 300.0, evaluations: int | None = None,
                        fidelity: Fidelity = Fidelity(iterations=150, rungs=1, val_episodes=100), seed: int = 0,
                        on_progress: Callable[[dict[str, Any]], None] | None = None, base: dict[str, Any] | None = None,
                        finalists: int = 0, final_s: float = 60.0) -> NasResult:
    """Search ``task``'s backbone with ``method`` for ``budget_s`` seconds (or ``evaluations``
    candidates, for evolution); candidates are scored by :class:`MetaObjective` on meta-validation
    tasks after ``fidelity.iterations`` meta-iterations; with ``finalists`` the best that many are
    scored again after ``final_s`` seconds of meta-training, and the best there wins (its
    ``error`` in the history is that score)."""
    if method not in METHODS:
        raise ConfigError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    target = parameter_count(build_backbone(handpicked(task)))
    started = time.perf_counter()
    if method == "darts":
        if task == "sine":
            raise ConfigError("darts searches convolutional cells: use --method evolution for sine")
        return _darts(task, target, budget_s or 300.0, seed, on_progress, started)
    base = base if base is not None else base_config(task)
    objective = MetaObjective(base, SearchSpace(()), fidelity)
    history: list[dict[str, Any]] = []
    scored: dict[tuple, float] = {}  # a genome met again is not trained again (training is deterministic)

    def evaluate(genome: dict[str, Any]) -> float:
        key = tuple(sorted(genome.items()))
        if key in scored:
            return -scored[key]
        spec = genome_spec(task, genome, target)
        error = scored[key] = objective.train_and_score(with_backbone(task, spec, seed, base))
        history.append({"genome": genome, "spec": spec, "error": error, "seconds": round(time.perf_counter() - started, 1)})
        if on_progress:
            on_progress(history[-1])
        return -error

    space = MLP_GENOME_SPACE if task == "sine" else GENOME_SPACE
    limit = min(evaluations or 10**6, 4 * cardinality(space))
    if method == "random":
        rng = np.random.default_rng(seed)
        while len(history) < min(limit, cardinality(space)) and (evaluations or time.perf_counter() - started < budget_s):
            evaluate(space.sample(rng))
    else:
        regularized_evolution(space, evaluate, limit, population=8, sample=3, seed=seed, budget_s=None if evaluations else budget_s)
    best = min(history, key=lambda h: h["error"])
    if finalists > 0:
        best = _final_rung(task, base, history, finalists, final_s, seed, fidelity.val_episodes, on_progress)
    spec = {**best["spec"], "found_by": method}
    candidates = sum(1 for h in history if "rung" not in h)  # the final rung's records are the same genomes again
    return NasResult(method, spec, parameter_count(build_backbone(spec)), target, candidates, time.perf_counter() - started,
                     best["error"], history, best["genome"])


def _final_rung(task: str, base: dict[str, Any], history: list[dict[str, Any]], finalists: int, final_s: float, seed: int,
                val_episodes: int, on_progress: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    """The best ``finalists`` candidates trained for ``final_s`` seconds each, scored on the same
    meta-validation tasks; the best of them (its record has ``rung_error``)."""
    from .budget import WallBudget

    objective = MetaObjective(base, SearchSpace(()), budget=WallBudget(final_s, final_s, val_episodes=val_episodes))
    finals = []
    for record in sorted(history, key=lambda h: h["error"])[:finalists]:
        error = objective.train_and_score(with_backbone(task, record["spec"], seed, base))
        finals.append({**record, "short_error": record["error"], "error": error, "final_rung_s": final_s})
        if on_progress:
            on_progress(finals[-1])
    history.extend({**f, "rung": "final"} for f in finals)
    return min(finals, key=lambda h: h["error"])


def _darts(task: str, target: int, budget_s: float, seed: int, on_progress, started: float) -> NasResult:
    from ..registry import build_tasks

    config = merge(base_config(task), ways=5, shots=1, queries=5, seed=seed)
    tasks = build_tasks(config, "train")
    alphabets = sorted({a.split("@")[0] for a in tasks.charset.alphabets})
    half = set(alphabets[::2])
    weight_tasks = build_tasks(merge(config, val_alphabets=list(config["task"]["val_alphabets"]) + [a for a in alphabets if a not in half]),
                               "train")
    arch_tasks = build_tasks(merge(config, val_alphabets=list(config["task"]["val_alphabets"]) + sorted(half)), "train")
    found = darts_search(weight_tasks, arch_tasks, budget_s=budget_s, seed=seed, on_log=on_progress)
    image = handpicked(task)
    spec = fit_width(lambda c: {"name": "cell", "edges": found.edges, "channels": c, "cells": 4, "image_size": image["image_size"],
                                "bn_running_stats": image.get("bn_running_stats", False)}, target)
    spec["found_by"] = "darts"
    return NasResult("darts", spec, parameter_count(build_backbone(spec)), target, found.iterations, time.perf_counter() - started,
                     None, found.history)
