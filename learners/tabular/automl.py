"""Offline AutoML for a table: the feature pipeline by the gate, the learner by successive halving
on the later rows held out (the order the rows came in, as a stream's), then the winner trained on
every row with the pipeline refitted on every row: a :class:`~learners.tabular.model.TabularModel`.

>>> import numpy as np
>>> from learners.tabular.data import Table
>>> gen = np.random.default_rng(0)
>>> X = gen.normal(size=(500, 3)).astype(np.float32)
>>> result = run_automl(Table(X, (X[:, 0] * 100 > X[:, 1]).astype(int), ("a", "b", "c"), "y", (0, 1)))
>>> result.holdout_score > 0.9, len(result.leaderboard) == 6
(True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError
from .candidates import CandidateSpec, default_candidates
from .data import Table
from .gate import GateReport, choose_pipeline
from .halving import Rung, successive_halving
from .importance import permutation_importance
from .model import TabularModel
from .pipeline import FeaturePipeline

MIN_ROWS = 20


@dataclass(frozen=True)
class AutoMLResult:
    model: TabularModel
    leaderboard: list[Rung]
    gate: GateReport
    holdout_score: float  # the winner's, on the held-out rows, before it learned them
    importance: dict[str, float]  # of the chosen pipeline's output features, on the held-out rows


def run_automl(table: Table, budget_s: float | None = None, holdout: float = 0.2, seed: int = 0,
               candidates: Sequence[CandidateSpec] | None = None, on_rung: Callable[[Rung], None] | None = None,
               ) -> AutoMLResult:
    if len(table) < MIN_ROWS:
        raise ConfigError(f"{len(table)} rows are too few to choose a model: give at least {MIN_ROWS}")
    if table.X.shape[1] == 0:
        raise ConfigError("no usable feature columns (every column but the target was dropped)")
    if not table.is_classification and not np.isfinite(table.y).all():
        raise ConfigError(f"the target {table.target!r} has values that are not finite numbers")
    deadline = time.monotonic() + budget_s if budget_s else None
    classes = len(table.classes)
    cut = int(len(table) * (1 - holdout))
    train, hold = table.rows(slice(0, cut)), table.rows(slice(cut, None))
    gate = choose_pipeline(train.X, train.y, classes, seed)
    specs = list(candidates or default_candidates(table.is_classification))
    Zt, Zh = gate.pipeline.transform(train.X), gate.pipeline.transform(hold.X)
    board = successive_halving(specs, Zt, train.y, Zh, hold.y, classes, seed=seed, on_rung=on_rung, deadline=deadline)
    winner = board[0]
    scored = winner.spec.build(Zt.shape[1], classes, seed)
    scored.learn_many(Zt, train.y)
    importance = permutation_importance(scored, Zh, hold.y, seed=seed)
    names = gate.pipeline.output_names(table.names)
    p = gate.pipeline
    final_pipeline = FeaturePipeline.fit(table.X, p.steps, p.pairs if len(p.pairs) else None, p.keep)
    learner = winner.spec.build(final_pipeline.width, classes, seed)
    learner.learn_many(final_pipeline.transform(table.X), table.y)
    imp = {n: round(float(v), 5) for n, v in zip(names, importance)}
    extra = {"holdout_score": winner.score, "importance": imp, "dropped_columns": list(table.dropped),
             "steps_tried": [{"step": t.step.value, "without": t.score_without, "with": t.score_with, "kept": t.kept}
                             for t in gate.trials]}
    model = TabularModel(final_pipeline, learner, table.names, table.target, table.classes, extra)
    return AutoMLResult(model, board, gate, winner.score, imp)


def importance_table(result: AutoMLResult) -> list[tuple[str, float]]:
    """Output features by importance, most important first."""
    return sorted(result.importance.items(), key=lambda kv: -kv[1])


def leaderboard_rows(board: list[Rung]) -> list[dict]:
    return [{"candidate": r.name, "rung": r.rung, "rows": r.rows, "score": r.score, **r.spec.to_json()} for r in board]
