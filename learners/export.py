"""A learner's network for a consumer without this project's code: as a ``torch.export`` program
(``torch.export.load(path).module()`` and call it; any number of rows) or as TorchScript
(``torch.jit.load``, which this torch marks deprecated). What is exported is the meta-learned network as it stands (the initialisation a
gradient-based learner adapts from, or the embedding a metric learner compares prototypes in); the
adaptation itself (inner-loop steps, prototypes) stays with whoever has the few examples.

>>> import tempfile, torch
>>> from learners.registry import build_learner, default_config
>>> config = default_config("sine", "fomaml")
>>> learner = build_learner(config)
>>> path = export_program(learner, config, tempfile.mkdtemp() + "/sine.pt2")
>>> x = torch.linspace(-5, 5, 7).reshape(-1, 1)
>>> bool(torch.allclose(torch.export.load(str(path)).module()(x), learner.model(x)))
True
"""

from __future__ import annotations

from pathlib import Path

import torch

from .base import MetaLearner
from .errors import ConfigError


def example_input(backbone: dict, rows: int = 2) -> torch.Tensor:
    """An input of the shape ``backbone`` takes: rows of features, or single-channel images."""
    if "image_size" in backbone:
        size = int(backbone["image_size"])
        return torch.zeros(rows, 1, size, size)
    return torch.zeros(rows, int(backbone.get("inputs", 1)))


def export_torchscript(learner: MetaLearner, config: dict, path: str | Path) -> Path:
    """Trace ``learner``'s network into a TorchScript file at ``path`` (``config``'s backbone gives
    the input shape); the file's ``metadata.json`` extra holds the config and the input shape."""
    import json

    backbone = config["backbone"]
    model = learner.model.eval()
    try:
        traced = torch.jit.trace(model, example_input(backbone), check_trace=True)
    except Exception as exc:  # noqa: BLE001 - tracing fails on data-dependent control flow, said plainly
        raise ConfigError(f"this model does not trace to TorchScript ({type(exc).__name__}: {exc})") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"metadata.json": json.dumps({"config": config, "input": list(example_input(backbone).shape[1:])})}
    torch.jit.save(traced, str(path), _extra_files=extra)
    return path


def export_program(learner: MetaLearner, config: dict, path: str | Path) -> Path:
    """``torch.export`` ``learner``'s network into ``path`` (a ``.pt2``), its first dimension (rows)
    left free; the file's ``metadata.json`` extra holds the config and the input shape."""
    import json

    example = example_input(config["backbone"])
    try:
        program = torch.export.export(learner.model.eval(), (example,),
                                      dynamic_shapes=({0: torch.export.Dim("rows", min=1)},))
    except Exception as exc:  # noqa: BLE001 - export fails on what it cannot capture, said plainly
        raise ConfigError(f"this model does not export ({type(exc).__name__}: {exc})") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path), extra_files={"metadata.json": json.dumps({"config": config,
                                                                                    "input": list(example.shape[1:])})})
    return path
