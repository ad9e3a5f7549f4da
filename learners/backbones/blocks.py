"""The hand-designed blocks the backbones are built from (and that searched cells reuse).

BatchNorm: the gradient-based learners run every task through ``torch.func.vmap``, so each task's
forward pass sees only its own images. Their Conv-4 normalises with :class:`TaskBatchNorm2d`: batch
statistics computed per task, at training and at test time alike (as Finn et al. did), with no
running average that could carry information from one task into another. It is written with plain
tensor ops because, in torch 2.13, ``torch.func.grad`` of a gradient through the fused batch-norm
kernel disagrees with finite differences (second-order MAML came out wrong by ~1%); plain ops
differentiate exactly. The metric learners embed one image at a time at test time, so theirs is
``nn.BatchNorm2d`` with running statistics, used in ``eval()``.
"""

from __future__ import annotations

import torch
from torch import nn

from learners.errors import ConfigError


class MLP(nn.Sequential):
    """A ReLU multi-layer perceptron on flat features: ``layers`` hidden layers of ``hidden`` units.
    The defaults are Finn et al.'s 1-40-40-1 sine regressor; the same class is the digits stream's
    embedding net (196-64-64-64) and the continual benchmarks' 784-100-100-10 classifier."""

    def __init__(self, hidden: int = 40, layers: int = 2, inputs: int = 1, outputs: int = 1, dropout: float = 0.0) -> None:
        mods: list[nn.Module] = []
        width = inputs
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
            width = hidden
        mods.append(nn.Linear(width, outputs))
        super().__init__(*mods)


class TaskBatchNorm2d(nn.Module):
    """Normalise with the statistics of the batch at hand (one task under ``vmap``); no running stats."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0, keepdim=True)
        scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        # one fused pass over the activations: x * scale + (bias - mean * scale)
        return torch.addcmul(self.bias.view(1, -1, 1, 1) - mean * scale, x, scale)


class Conv4(nn.Module):
    """Four blocks of 3x3 conv, BatchNorm, ReLU and 2x2 max-pool; an optional linear head.

    With ``out_features=None`` it is an embedding network (ProtoNet, Matching nets).
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden: int = 64,
        image_size: int = 28,
        out_features: int | None = None,
        bn_running_stats: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if image_size < 16:
            raise ConfigError(f"Conv-4 halves the image four times: it needs image_size >= 16, got {image_size}")
        blocks: list[nn.Module] = []
        ch = in_channels
        for _ in range(4):
            blocks += [
                nn.Conv2d(ch, hidden, 3, padding=1),
                nn.BatchNorm2d(hidden) if bn_running_stats else TaskBatchNorm2d(hidden),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ] + ([nn.Dropout(dropout)] if dropout > 0 else [])
            ch = hidden
        self.features = nn.Sequential(*blocks, nn.Flatten())
        size = image_size
        for _ in range(4):
            size //= 2
        self.embedding_dim = hidden * max(size, 1) ** 2
        self.head = nn.Linear(self.embedding_dim, out_features) if out_features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x)
        return self.head(z) if self.head is not None else z
