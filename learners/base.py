"""The one interface every meta-learner has: adapt, predict, meta-update.

Everything works on task batches (a leading task axis); ``adapt``/``predict`` on a single task are
thin wrappers. ``kind`` is ``"regression"`` (MSE) or ``"classification"`` (cross-entropy, accuracy).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .tasks.base import TaskBatch
from .errors import ConfigError

KINDS = ("regression", "classification")
OPTIMIZERS = ("adam", "sgd")


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The meta-optimizer: Adam, or SGD with Nesterov momentum 0.9."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def task_loss(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss of one task's predictions (no task axis)."""
    if kind == "regression":
        return F.mse_loss(out, y)
    return F.cross_entropy(out, y)


def task_score(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-task quality with a task axis: MSE for regression, accuracy for classification."""
    if kind == "regression":
        return ((out - y) ** 2).flatten(1).mean(1)
    return (out.argmax(-1) == y).float().mean(-1)


class MetaLearner(ABC):
    """A model plus the rule that adapts it to a task and the rule that meta-trains it."""

    name: str = "?"

    def __init__(self, model: nn.Module, kind: str, meta_lr: float = 1e-3, optimizer: str = "adam") -> None:
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, not {kind!r}")
        self.model = model
        self.kind = kind
        self.meta_lr = meta_lr
        self.optimizer_name = optimizer
        self.optimizer = make_optimizer(optimizer, self.model.parameters(), meta_lr)

    # --- adaptation ---------------------------------------------------------------------------
    @abstractmethod
    def adapt_tasks(self, support_x: torch.Tensor, support_y: torch.Tensor, steps: int | None = None) -> Any:
        """Adapt to each task of a batch; returns what :meth:`predict_tasks` needs."""

    @abstractmethod
    def predict_tasks(self, adapted: Any, query_x: torch.Tensor) -> torch.Tensor:
        """Predictions (values or logits) for each task's queries, ``[T, Q, ...]``."""

    @abstractmethod
    def predict_unadapted(self, query_x: torch.Tensor, ways: int) -> torch.Tensor:
        """What the learner predicts before it has seen a support set."""

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, steps: int | None = None) -> Any:
        """Adapt to one task (no task axis)."""
        return self.adapt_tasks(support_x[None], support_y[None], steps)

    def predict(self, adapted: Any, query_x: torch.Tensor) -> torch.Tensor:
        return self.predict_tasks(adapted, query_x[None])[0]

    # --- meta-training ------------------------------------------------------------------------
    @abstractmethod
    def meta_update(self, batch: TaskBatch) -> dict[str, float]:
        """One meta-training step on a batch of tasks; returns metrics of that step."""

    def evaluate(self, batch: TaskBatch, steps: int | None = None) -> dict[str, torch.Tensor]:
        """Per-task score before and after adaptation on the support set, scored on the queries."""
        self.model.eval()
        ways = int(batch.support_y.max()) + 1 if self.kind == "classification" else 0
        with torch.no_grad():
            before = task_score(self.kind, self.predict_unadapted(batch.query_x, ways), batch.query_y)
        adapted = self.adapt_tasks(batch.support_x, batch.support_y, steps)
        with torch.no_grad():
            after = task_score(self.kind, self.predict_tasks(adapted, batch.query_x), batch.query_y)
        self.model.train()
        return {"before": before, "after": after}

    def hyperparameters(self) -> dict[str, Any]:
        return {"meta_lr": self.meta_lr, "optimizer": self.optimizer_name}
