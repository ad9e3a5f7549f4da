"""The feature pipeline inside a network, for tabular meta-learners in the workers: the first layer
takes a signed log of skewed columns (``log``), imputes missing values (NaN) with the column mean,
standardises each column, drops columns that permutation importance found useless (``select``),
appends a missing-value indicator per column and products of the most important pairs
(``products``). Its statistics are buffers, so they travel in the version's safetensors with the
weights and every consumer applies them by running the model: nobody re-implements preprocessing.
The worker refits them on the replay buffer's rows at each update (:func:`refit_standardisers`)
and measures each column's importance on held-out tasks (:func:`set_importance`), which the next
refit uses to choose products and selection and ``metastream models show`` prints.

Which steps a model takes is its config; whether a step helps is decided in the stream: a variant
with the step runs as a shadow candidate (``learners/online/shadows.py``) and takes over only when
it scores better on the same incoming tasks.

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

from ..backbones.blocks import MLP
from .pipeline import FeaturePipeline, Step, skewed_columns

Z_LIMIT = 1e3  # standardised values are capped: one absurd value cannot swamp an embedding


def signed_log(x: np.ndarray | torch.Tensor, columns) -> np.ndarray | torch.Tensor:
    """``sign(x) * log(1 + |x|)`` on the flagged columns (a 0/1 mask), the others unchanged."""
    lib = torch if isinstance(x, torch.Tensor) else np
    logged = lib.sign(x) * lib.log1p(lib.abs(x))
    return lib.where(columns > 0, logged, x)


class FeatureStandardiser(nn.Module):
    def __init__(self, features: int, missing: bool = True, log: bool = False, products: int = 0, select: bool = False) -> None:
        super().__init__()
        self.features, self.missing, self.log, self.products, self.select = features, missing, log, products, select
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("importance", torch.zeros(features))  # accuracy (or MSE) lost when the column is shuffled
        if log:
            self.register_buffer("log_cols", torch.zeros(features))  # 1: skewed, logged (fixed at the first refit)
        if select:
            self.register_buffer("keep", torch.ones(features))
        if products:
            self.register_buffer("pairs", torch.zeros(products, 2, dtype=torch.long))  # chosen once importance is known
            self.register_buffer("pairs_set", torch.zeros(()))

    @property
    def width(self) -> int:
        return self.features * (2 if self.missing else 1) + self.products

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gap = ~torch.isfinite(x)
        if self.log:
            x = signed_log(torch.where(gap, torch.zeros_like(x), x), self.log_cols)
        z = ((torch.where(gap, self.mean, x) - self.mean) / self.std).clamp(-Z_LIMIT, Z_LIMIT)
        if self.select:
            z = z * self.keep
        parts = [z]
        if self.missing:
            parts.append(gap.to(z.dtype))
        if self.products:
            prod = z[..., self.pairs[:, 0]] * z[..., self.pairs[:, 1]] * self.pairs_set
            parts.append(prod.clamp(-Z_LIMIT, Z_LIMIT))
        return torch.cat(parts, -1) if len(parts) > 1 else z

    @torch.no_grad()
    def refit(self, rows: np.ndarray) -> None:
        """Statistics of ``rows`` (NaN and infinities are gaps), as the feature pipeline's running
        standardisation computes them; a column with no value keeps 0 / 1. Skewed columns are
        chosen at the first refit and stay; products and selection follow the importance the last
        update measured (none yet: no product, every column kept)."""
        X = np.asarray(rows, np.float32).reshape(-1, self.features)
        if self.log:
            if not self.count:
                self.log_cols.copy_(torch.as_tensor(skewed_columns(X), dtype=self.log_cols.dtype))
            X = signed_log(np.where(np.isfinite(X), X, np.nan), self.log_cols.numpy())
        stats = FeaturePipeline.fit(X, (Step.STANDARDISE,))
        std = np.sqrt(stats.m2 / np.maximum(stats.count - 1, 1))
        self.mean.copy_(torch.as_tensor(stats.mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(np.where(std > 1e-8, std, 1.0), dtype=self.std.dtype))
        self.count.fill_(float(len(X)))
        known = bool((self.importance != 0).any())
        if self.select and known:
            keep = self.importance > 0
            self.keep.copy_((keep if keep.any() else torch.ones_like(keep)).to(self.keep.dtype))
        if self.products and known and not self.pairs_set:
            self.pairs.copy_(top_pairs(self.importance.numpy(), self.products))
            self.pairs_set.fill_(1.0)


def top_pairs(importance: np.ndarray, k: int) -> torch.Tensor:
    """The ``k`` column pairs with the largest product of (positive) importance, as ``(k, 2)``.

    >>> top_pairs(np.array([0.1, 0.5, 0.0, 0.3]), 2).tolist()
    [[1, 3], [0, 1]]
    """
    imp = np.maximum(np.asarray(importance, np.float64), 0.0)
    pairs = [(imp[a] * imp[b], -a, -b) for a in range(len(imp)) for b in range(a + 1, len(imp))]
    pairs.sort(reverse=True)
    chosen = [[-a, -b] for _, a, b in pairs[:k]]
    chosen += [[0, 0]] * (k - len(chosen))  # fewer columns than pairs asked for: x0 squared fills in
    return torch.tensor(chosen, dtype=torch.long)


def tabular_backbone(inputs: int, hidden: int = 64, layers: int = 2, outputs: int = 64, missing: bool = True,
                     dropout: float = 0.0, log: bool = False, products: int = 0, select: bool = False) -> nn.Sequential:
    """A :class:`FeatureStandardiser` followed by an MLP over its outputs."""
    first = FeatureStandardiser(inputs, missing, log, products, select)
    return nn.Sequential(first, MLP(hidden, layers, first.width, outputs, dropout))


def standardisers(model: nn.Module) -> list[FeatureStandardiser]:
    return [m for m in model.modules() if isinstance(m, FeatureStandardiser)]


def has_standardiser(model: nn.Module) -> bool:
    return bool(standardisers(model))


def refit_standardisers(model: nn.Module, rows: np.ndarray) -> bool:
    """Refit every standardiser in ``model`` on ``rows``; whether there was one."""
    found = standardisers(model)
    for module in found:
        module.refit(rows)
    return bool(found)


@torch.no_grad()
def set_importance(model: nn.Module, importance: np.ndarray) -> None:
    """Record each input column's permutation importance in ``model``'s standardisers."""
    for module in standardisers(model):
        module.importance.copy_(torch.as_tensor(np.asarray(importance), dtype=module.importance.dtype))


def pipeline_summary(weights: bytes, config: dict) -> list[dict]:
    """Per input column of a tabular version: the mean and spread it standardises with, whether it
    is logged, kept and gap-flagged, and its importance; products as extra rows (``metastream
    models show``). Empty for any other model."""
    backbone = config.get("backbone", {})
    if backbone.get("name") != "tabular":
        return []
    from safetensors.numpy import load

    saved = load(weights)
    # a plain model's standardiser is "0."; a mixture's components each carry one ("components.0.0.", ...),
    # refitted on the same rows: the first component's stands for them
    prefix = "0." if "0.mean" in saved else "components.0.0."
    arrays = {k[len(prefix):]: v for k, v in saved.items() if k.startswith(prefix)}
    n = len(arrays["mean"])
    names = config["task"].get("names") or [f"x{i}" for i in range(n)]
    logged = arrays.get("log_cols", np.zeros(n))
    keep = arrays.get("keep", np.ones(n))
    importance = arrays.get("importance")
    rows = [{"feature": name, "log": bool(logged[i]), "kept": bool(keep[i]), "mean": round(float(arrays["mean"][i]), 6),
             "std": round(float(arrays["std"][i]), 6), "missing_indicator": bool(backbone.get("missing", True)),
             "importance": None if importance is None else round(float(importance[i]), 4)} for i, name in enumerate(names)]
    if "pairs" in arrays and float(arrays["pairs_set"]):
        rows += [{"feature": f"{names[a]} * {names[b]}", "log": False, "kept": True, "mean": 0.0, "std": 1.0,
                  "missing_indicator": False, "importance": None} for a, b in arrays["pairs"].tolist()]
    return rows
