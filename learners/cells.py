"""Backbones that architecture search finds, built from a JSON spec like the hand-written ones:

- ``{"name": "cell", ...}``: a stem convolution, then ``cells`` cells each followed by 2x2
  max-pooling; a cell has ``nodes`` intermediate nodes, each the sum of candidate operations on
  earlier nodes (DARTS' search space, without reduction cells: pooling reduces). A spec names, per
  node, the edges it keeps as ``[from, op]`` pairs; node 0 is the cell's input.
- ``{"name": "genome", ...}``: a plain stack of conv blocks (depth, width, kernel, pooling,
  residual connections, an optional linear embedding), the discrete genome evolution searches.
- ``{"name": "mlp_genome", ...}``: an MLP of a given depth, width, activation and residual
  connections (for flat features such as sine regression).

Every normalisation is per task (:class:`~learners.backbones.TaskBatchNorm2d`) unless
``bn_running_stats`` asks for running statistics (the metric learners), as in Conv-4.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import ConfigError

OPS = ("none", "skip", "conv3", "conv5", "sep3", "dil3", "avgpool3", "maxpool3")


def norm(channels: int, running: bool) -> nn.Module:
    from .backbones.blocks import TaskBatchNorm2d

    return nn.BatchNorm2d(channels) if running else TaskBatchNorm2d(channels)


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


def make_op(name: str, channels: int, running: bool) -> nn.Module:
    """One candidate operation, shape-preserving (stride 1, same padding)."""
    c = channels
    if name == "none":
        return Zero()
    if name == "skip":
        return nn.Identity()
    if name in ("conv3", "conv5"):
        k = int(name[-1])
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, padding=k // 2, bias=False), norm(c, running))
    if name == "sep3":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
                             norm(c, running))
    if name == "dil3":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=2, dilation=2, bias=False), norm(c, running))
    if name == "avgpool3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if name == "maxpool3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ConfigError(f"unknown operation {name!r}; choose from {', '.join(OPS)}")


class Cell(nn.Module):
    """Fixed edges: node j = sum over its ``[from, op]`` edges of op(node[from])."""

    def __init__(self, channels: int, edges: list[list[list]], running: bool) -> None:
        super().__init__()
        self.edges = [[(int(src), str(op)) for src, op in node] for node in edges]
        self.ops = nn.ModuleList(nn.ModuleList(make_op(op, channels, running) for _, op in node) for node in self.edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for node, ops in zip(self.edges, self.ops):
            states.append(sum(op(states[src]) for (src, _), op in zip(node, ops)))
        return torch.stack(states[1:]).mean(0)


class CellNet(nn.Module):
    """Stem conv, then ``cells`` (cell, ReLU, 2x2 max-pool), then flatten: an embedding network,
    or with ``out_features`` a classifier."""

    def __init__(self, edges: list[list[list]], channels: int = 32, cells: int = 4, image_size: int = 28, in_channels: int = 1,
                 out_features: int | None = None, bn_running_stats: bool = False) -> None:
        super().__init__()
        if image_size < 2 ** cells:
            raise ConfigError(f"{cells} cells halve the image {cells} times: image_size must be >= {2 ** cells}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), norm(channels, bn_running_stats))
        self.cells = nn.ModuleList(Cell(channels, edges, bn_running_stats) for _ in range(cells))
        self.pool = nn.MaxPool2d(2)
        size = image_size // 2 ** cells
        self.embedding_dim = channels * size * size
        self.head = nn.Linear(self.embedding_dim, out_features) if out_features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = self.pool(torch.relu(cell(x)))
        z = x.flatten(1)
        return self.head(z) if self.head is not None else z


class GenomeNet(nn.Module):
    """``depth`` blocks of conv(kernel)-norm-ReLU (plus the block's input when ``residual`` and the
    widths match), each followed by 2x2 ``pool`` while the image is >= 2 pixels; then flatten and,
    with ``embedding``, a linear layer to that size."""

    def __init__(self, depth: int = 4, width: int = 64, kernel: int = 3, pool: str = "max", residual: bool = False,
                 embedding: int = 0, image_size: int = 28, in_channels: int = 1, out_features: int | None = None,
                 bn_running_stats: bool = False) -> None:
        super().__init__()
        if pool not in ("max", "avg"):
            raise ConfigError(f"pool must be max or avg, not {pool!r}")
        self.blocks = nn.ModuleList()
        self.residual = residual
        ch, size = in_channels, image_size
        self.pools = []
        for _ in range(depth):
            self.blocks.append(nn.Sequential(nn.Conv2d(ch, width, kernel, padding=kernel // 2), norm(width, bn_running_stats)))
            self.pools.append(size >= 2)
            size = size // 2 if size >= 2 else size
            ch = width
        self.pool = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
        flat = width * size * size
        self.embed = nn.Linear(flat, embedding) if embedding else None
        self.embedding_dim = embedding or flat
        self.head = nn.Linear(self.embedding_dim, out_features) if out_features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, pooled in zip(self.blocks, self.pools):
            y = torch.relu(block(x))
            if self.residual and y.shape == x.shape:
                y = y + x
            x = self.pool(y) if pooled else y
        z = x.flatten(1)
        if self.embed is not None:
            z = self.embed(z)
        return self.head(z) if self.head is not None else z


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU, "elu": nn.ELU}


class MLPGenome(nn.Module):
    """``layers`` hidden layers of ``hidden`` units with ``activation``; ``residual`` adds each
    hidden layer's input to its output (from the second layer on, where the widths match);
    ``layer_norm`` normalises each hidden layer before its activation."""

    def __init__(self, hidden: int = 40, layers: int = 2, activation: str = "relu", residual: bool = False,
                 layer_norm: bool = False, inputs: int = 1, outputs: int = 1) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
        self.layers = nn.ModuleList(nn.Linear(inputs if i == 0 else hidden, hidden) for i in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers)) if layer_norm else None
        self.act = ACTIVATIONS[activation]()
        self.residual = residual
        self.out = nn.Linear(hidden if layers else inputs, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            y = layer(x)
            y = self.act(self.norms[i](y) if self.norms is not None else y)
            x = y + x if self.residual and i > 0 else y
        return self.out(x)


def build_searched(spec: dict[str, Any]) -> nn.Module:
    spec = dict(spec)
    name = spec.pop("name")
    spec.pop("found_by", None)  # provenance, not a constructor argument
    if name == "cell":
        return CellNet(**spec)
    if name == "genome":
        return GenomeNet(**spec)
    if name == "mlp_genome":
        return MLPGenome(**spec)
    raise ConfigError(f"unknown searched backbone {name!r}")


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
