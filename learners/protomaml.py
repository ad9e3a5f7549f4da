"""Proto-MAML (Triantafillou et al., 2020): the head the inner loop starts from is built from the
task's prototypes (class means of the support embeddings), the linear layer equivalent to a
ProtoNet's squared-distance classifier: ``w_k = 2 c_k``, ``b_k = -|c_k|^2``. Adaptation then
starts where a ProtoNet already is, and gradient steps refine it.

This is the cheap member of the family: like :class:`~learners.anil.ANIL`, the inner loop adapts
only that head (the body runs once per task), and the meta-gradient flows through the steps and
through the prototypes into the embedding. The backbone is an embedding net (no ``out_features``).

>>> import torch
>>> from learners.backbones import Conv4
>>> _ = torch.manual_seed(0)
>>> learner = ProtoMAML(Conv4(hidden=8, image_size=16), "classification", inner_steps=1)
>>> x, y = torch.randn(2, 3, 1, 16, 16), torch.tensor([[0, 1, 2]] * 2)
>>> learner.predict_tasks(learner.adapt_tasks(x, y), x).argmax(-1).tolist()
[[0, 1, 2], [0, 1, 2]]
"""

from __future__ import annotations

import torch
from torch import nn

from .anil import ANIL
from .errors import ConfigError
from .functional import Params


class ProtoMAML(ANIL):
    name = "protomaml"

    def __init__(self, model: nn.Module, kind: str, inner_lr: float = 0.1, inner_steps: int = 3, meta_lr: float = 1e-3,
                 test_steps: int | None = None, chunk_size: int | None = None, optimizer: str = "adam",
                 first_order: bool = False) -> None:
        if kind != "classification":
            raise ConfigError("Proto-MAML builds its head from class prototypes: it needs a classification task")
        super().__init__(model, kind, inner_lr, inner_steps, meta_lr, test_steps, chunk_size, optimizer, first_order)

    def _check_head(self) -> None:
        if self.split.head_prefix is not None:
            raise ConfigError("Proto-MAML builds its head from prototypes: give the backbone no out_features")

    def _initial_head(self, params: Params, support_f: torch.Tensor, support_y: torch.Tensor, ways: int) -> Params:
        onehot = (support_y[:, None] == torch.arange(ways, device=support_y.device)).to(support_f.dtype)  # [S, ways]; vmap-safe
        protos = (onehot.T @ support_f) / onehot.sum(0).clamp(min=1)[:, None]
        return {"weight": 2 * protos, "bias": -(protos ** 2).sum(-1)}
