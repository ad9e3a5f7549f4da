"""The feature pipeline inside a network, for tabular meta-learners in the workers: the first layer
imputes missing values (NaN) with the column mean, standardises each column and appends a
missing-value indicator per column. Its statistics are buffers, so they travel in the version's
safetensors with the weights and every consumer applies them by running the model: nobody
re-implements preprocessing. The worker refits them on the replay buffer's rows at each update
(:func:`refit_standardisers`).

>>> import numpy as np, torch
>>> net = tabular_backbone(inputs=2, hidden=8, layers=1, outputs=4)
>>> refit_standardisers(net, np.array([[1.0, 100.0], [3.0, np.nan], [5.0, 300.0]], np.float32))
True
>>> net[0](torch.tensor([[3.0, float("nan")]])).tolist()
[[0.0, 0.0, 0.0, 1.0]]
>>> net(torch.tensor([[3.0, float("nan")]])).shape
torch.Size([1, 4])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..backbones import MLP
from .pipeline import FeaturePipeline, Step

Z_LIMIT = 1e3  # standardised values are capped: one absurd value cannot swamp an embedding


class FeatureStandardiser(nn.Module):
    def __init__(self, features: int, missing: bool = True) -> None:
        super().__init__()
        self.features, self.missing = features, missing
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.register_buffer("count", torch.zeros(()))

    @property
    def width(self) -> int:
        return self.features * (2 if self.missing else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gap = ~torch.isfinite(x)
        z = ((torch.where(gap, self.mean, x) - self.mean) / self.std).clamp(-Z_LIMIT, Z_LIMIT)
        return torch.cat([z, gap.to(z.dtype)], -1) if self.missing else z

    @torch.no_grad()
    def refit(self, rows: np.ndarray) -> None:
        """Statistics of ``rows`` (NaN and infinities are gaps), as the feature pipeline's running
        standardisation computes them; a column with no value keeps 0 / 1."""
        X = np.asarray(rows, np.float32).reshape(-1, self.features)
        stats = FeaturePipeline.fit(X, (Step.STANDARDISE,))
        std = np.sqrt(stats.m2 / np.maximum(stats.count - 1, 1))
        self.mean.copy_(torch.as_tensor(stats.mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(np.where(std > 1e-8, std, 1.0), dtype=self.std.dtype))
        self.count.fill_(float(len(X)))


def tabular_backbone(inputs: int, hidden: int = 64, layers: int = 2, outputs: int = 64, missing: bool = True,
                     dropout: float = 0.0) -> nn.Sequential:
    """A :class:`FeatureStandardiser` followed by an MLP over its outputs."""
    first = FeatureStandardiser(inputs, missing)
    return nn.Sequential(first, MLP(hidden, layers, first.width, outputs, dropout))


def has_standardiser(model: nn.Module) -> bool:
    return any(isinstance(m, FeatureStandardiser) for m in model.modules())


def refit_standardisers(model: nn.Module, rows: np.ndarray) -> bool:
    """Refit every standardiser in ``model`` on ``rows``; whether there was one."""
    found = False
    for module in model.modules():
        if isinstance(module, FeatureStandardiser):
            module.refit(rows)
            found = True
    return found


def pipeline_summary(weights: bytes, config: dict) -> list[dict]:
    """Per input column of a tabular version: the mean and spread it standardises with, and whether
    a gap is flagged (``metastream models show``); empty for any other model."""
    backbone = config.get("backbone", {})
    if backbone.get("name") != "tabular":
        return []
    from safetensors.numpy import load

    arrays = load(weights)
    names = config["task"].get("names") or [f"x{i}" for i in range(len(arrays["0.mean"]))]
    return [{"feature": n, "mean": round(float(m), 6), "std": round(float(s), 6), "missing_indicator": bool(backbone.get("missing", True))}
            for n, m, s in zip(names, arrays["0.mean"].tolist(), arrays["0.std"].tolist())]
