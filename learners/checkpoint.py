"""Checkpoints: ``model.safetensors`` (weights, never a pickle) and ``config.json`` (the config that
rebuilds the learner, its metrics) in one folder; ``history.jsonl`` holds the training curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from .base import MetaLearner
from .registry import build_learner

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
HISTORY = "history.jsonl"


def save_checkpoint(folder: str | Path, learner: MetaLearner, config: dict[str, Any], metrics: dict[str, Any] | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in learner.model.state_dict().items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"algo": config["algo"]})
    tmp.replace(folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps({"config": config, "metrics": metrics or {}}, indent=2, sort_keys=True))
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no {CONFIG}: pass a folder written by 'metastream meta-train --out'")
    return json.loads(path.read_text())


def load_checkpoint(folder: str | Path, device: str = "cpu") -> tuple[MetaLearner, dict[str, Any]]:
    """Rebuild the learner a folder describes and load its weights."""
    saved = read_config(folder)
    learner = build_learner(saved["config"])
    weights = Path(folder) / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} holds no {WEIGHTS}")
    learner.model.load_state_dict(load_file(str(weights), device=device))
    learner.model.to(device)
    return learner, saved


def read_history(folder: str | Path) -> list[dict[str, Any]]:
    path = Path(folder) / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
