"""What Prototypical and Matching networks share: an embedding network, and an episode batch
embedded in one forward pass (all tasks' images flattened), so there is no loop over tasks."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import MetaLearner, task_score
from .tasks.augment import Affine
from .tasks.base import TaskBatch
from .errors import ConfigError


class MetricLearner(MetaLearner):
    """Adaptation is embedding the support set; no gradient steps at test time."""

    def __init__(self, model: nn.Module, kind: str = "classification", meta_lr: float = 1e-3,
                 tta: int = 0, tta_augment: Affine | None = None, optimizer: str = "adam") -> None:
        if kind != "classification":
            raise ConfigError(f"{type(self).__name__} is a classifier: it needs classification tasks (e.g. omniglot), not {kind}")
        super().__init__(model, kind, meta_lr, optimizer)
        self.tta = tta
        self.tta_augment = tta_augment or Affine()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``[T, S, C, H, W]`` images to ``[T, S, D]`` in one pass. With test-time augmentation
        (``tta`` > 0, eval mode only) each embedding is averaged with those of ``tta`` distorted copies."""
        t, s = x.shape[:2]
        flat = x.reshape(t * s, *x.shape[2:])
        z = self.model(flat)
        if self.tta and not self.model.training:
            gen = torch.Generator().manual_seed(0)
            for _ in range(self.tta):
                z = z + self.model(self.tta_augment(flat, gen))
            z = z / (self.tta + 1)
        return z.view(t, s, -1)

    @staticmethod
    def one_hot(y: torch.Tensor, ways: int | None = None) -> torch.Tensor:
        return F.one_hot(y, ways or int(y.max()) + 1).float()

    def adapt_tasks(self, support_x, support_y, steps=None) -> Any:
        with torch.no_grad():
            return self.summarise(self.embed(support_x), support_y)

    def predict_tasks(self, adapted: Any, query_x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.scores(adapted, self.embed(query_x))

    def predict_unadapted(self, query_x: torch.Tensor, ways: int) -> torch.Tensor:
        """Without a support set a metric learner knows no classes: uniform scores (chance)."""
        return torch.zeros(*query_x.shape[:2], ways, device=query_x.device)

    @abstractmethod
    def summarise(self, support_z: torch.Tensor, support_y: torch.Tensor) -> Any:
        """What the support set becomes: prototypes, or normalised embeddings and labels."""

    @abstractmethod
    def scores(self, summary: Any, query_z: torch.Tensor) -> torch.Tensor:
        """Logits of each query against the summary."""

    def meta_update(self, batch: TaskBatch) -> dict[str, float]:
        self.model.train()
        x = torch.cat([batch.support_x, batch.query_x], dim=1)
        z = self.embed(x)
        s = batch.support_x.shape[1]
        logits = self.scores(self.summarise(z[:, :s], batch.support_y), z[:, s:])
        loss = F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "accuracy": float(task_score(self.kind, logits.detach(), batch.query_y).mean())}

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "tta": self.tta}
