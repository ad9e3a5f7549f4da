"""Where data lives and which device to run on: one place for settings read from the environment."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "METASTREAM_DATA"


def data_dir() -> Path:
    """The shared data folder: ``$METASTREAM_DATA`` if set, else the first ``../shared/data`` found
    walking up from the working directory and from this package (the layout of a checkout)."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in [start, *start.parents]:
            candidate = folder / "shared" / "data"
            if candidate.is_dir():
                return candidate
            candidate = folder.parent / "shared" / "data"
            if candidate.is_dir():
                return candidate
    raise FileNotFoundError(
        f"cannot find the shared data folder: set {DATA_ENV} to the folder holding omniglot/ and mnist/"
    )


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, the CPU otherwise; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a torch generator for samplers to draw from."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
