"""The networks the learners adapt: plain ``nn.Module``s, described by a small JSON-able spec.
:func:`build_backbone` dispatches a spec to the hand-designed blocks (``blocks.py``), the tabular
backbone or a searched architecture (``learners/cells.py``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from learners.backbones.blocks import MLP, Conv4, TaskBatchNorm2d
from learners.errors import ConfigError

__all__ = ["MLP", "Conv4", "TaskBatchNorm2d", "IMAGE_BACKBONES", "SEARCHED", "build_backbone"]

SEARCHED = ("cell", "genome", "mlp_genome")  # the specs architecture search emits (learners/cells.py)
IMAGE_BACKBONES = ("conv4", "cell", "genome")


def build_backbone(spec: dict[str, Any]) -> nn.Module:
    """``{"name": "mlp", ...}``, ``{"name": "conv4", ...}`` or ``{"name": "tabular", ...}`` (an MLP
    behind a standardiser that takes missing values) to a fresh module."""
    spec = dict(spec)
    name = spec.pop("name")
    if name == "mlp":
        return MLP(**spec)
    if name == "conv4":
        return Conv4(**spec)
    if name == "tabular":
        from learners.tabular.standardiser import tabular_backbone

        return tabular_backbone(**spec)
    if name in SEARCHED:
        from learners.cells import build_searched

        return build_searched({"name": name, **spec})
    raise ConfigError(f"unknown backbone {name!r}; choose 'mlp', 'conv4', 'tabular' or a searched one ({', '.join(SEARCHED)})")
