"""Where a new agent type starts: from the existing model whose tasks look most like its first
ones. Each candidate (a model of the same learner family and architecture, so its weights fit)
encodes the newcomer's first tasks and a sample of its own recent tasks (:func:`encode_tasks`);
the cosine of the two mean encodings is their similarity. The newcomer starts from the most
similar candidate's published weights; with no candidate it starts from its own initialisation.

>>> cfg = {"algo": "protonet", "backbone": {"name": "mlp", "hidden": 8}, "task": {"name": "tabular", "features": 3}}
>>> compatible(cfg, {**cfg, "learner": {"meta_lr": 0.1}}), compatible(cfg, {**cfg, "algo": "matching"})
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..base import MetaLearner
from ..tasks.base import TaskBatch
from .encoder import encode_tasks


def compatible(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether weights of a model of config ``a`` load into one of config ``b`` and mean the same:
    same algorithm and backbone."""
    return a.get("algo") == b.get("algo") and a.get("backbone") == b.get("backbone")


@dataclass(frozen=True)
class Candidate:
    model_id: str
    version: int  # the published version whose weights a newcomer would take
    learner: MetaLearner  # holding those weights
    own_tasks: TaskBatch  # a sample of the candidate's recent tasks


@dataclass(frozen=True)
class WarmStart:
    """The choice: ``model_id`` ``None`` means no compatible model (it starts from scratch)."""

    model_id: str | None
    version: int = 0
    similarity: float = float("nan")
    similarities: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What the newcomer's config keeps (its versions carry it; an audit reloads those weights)."""
        return {"model_id": self.model_id, "version": self.version, "similarity": round(self.similarity, 6)}


def similarity(learner: MetaLearner, first: TaskBatch, own: TaskBatch) -> float:
    """Cosine between the mean encodings of ``first`` and ``own`` under ``learner``."""
    a = encode_tasks(learner, first.support_x, first.support_y).mean(0)
    b = encode_tasks(learner, own.support_x, own.support_y).mean(0)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def choose_warm_start(first: TaskBatch, candidates: list[Candidate]) -> WarmStart:
    """The most similar candidate to the newcomer's ``first`` tasks (ties: the first listed)."""
    scores = {c.model_id: similarity(c.learner, first, c.own_tasks) for c in candidates}
    if not scores:
        return WarmStart(None)
    best = max(candidates, key=lambda c: scores[c.model_id])
    return WarmStart(best.model_id, best.version, scores[best.model_id], scores)
