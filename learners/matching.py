"""Matching Networks (Vinyals et al., 2016), without full-context embeddings: a query attends to
every support embedding by scaled cosine similarity, and its class distribution is the attention
mass on each label."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .metric import MetricLearner


class MatchingNet(MetricLearner):
    name = "matching"

    def __init__(self, model: nn.Module, kind: str = "classification", meta_lr: float = 1e-3,
                 temperature: float = 10.0, **kw) -> None:
        super().__init__(model, kind, meta_lr, **kw)
        self.temperature = temperature

    def summarise(self, support_z: torch.Tensor, support_y: torch.Tensor):
        return F.normalize(support_z, dim=-1), self.one_hot(support_y)

    def scores(self, summary, query_z: torch.Tensor) -> torch.Tensor:
        support_n, onehot = summary
        attention = torch.softmax(self.temperature * F.normalize(query_z, dim=-1) @ support_n.transpose(1, 2), dim=-1)
        return torch.log(attention @ onehot + 1e-8)  # log-probabilities work as logits

    def hyperparameters(self):
        return {**super().hyperparameters(), "temperature": self.temperature}
