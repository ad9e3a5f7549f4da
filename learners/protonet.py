"""Prototypical Networks (Snell et al., 2017): a class is the mean of its support embeddings and a
query scores ``-||z - prototype||^2`` against each."""

from __future__ import annotations

import torch

from .metric import MetricLearner


class ProtoNet(MetricLearner):
    name = "protonet"

    def summarise(self, support_z: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
        onehot = self.one_hot(support_y)  # [T, S, N]
        return onehot.transpose(1, 2) @ support_z / onehot.sum(1).unsqueeze(-1)  # [T, N, D]

    def scores(self, prototypes: torch.Tensor, query_z: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(query_z, prototypes).pow(2)
