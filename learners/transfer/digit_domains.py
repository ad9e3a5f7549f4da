"""Digit domains on one 8x8 grid, for domain adaptation: MNIST's 28x28 images pooled the way UCI's
optical digits were made (ink counted over 4x4 blocks of a 32x32 bitmap), UCI's optical digits
themselves (other writers, another capture and preprocessing: a real shift), and MNIST rotated by
90 degrees or inverted (synthetic shifts). Every image is 64 numbers in [0, 1].

>>> import torch
>>> x = torch.zeros(1, 784); x[0, 28 * 14 + 14] = 1.0
>>> pooled = mnist_to_grid(x, size_normalise=False)
>>> pooled.shape, round(float(pooled.sum() * 16), 3)
(torch.Size([1, 64]), 1.0)
>>> bool((inverted(pooled) + pooled == 1).all()), rotated(torch.arange(64.0)[None])[0, :3].tolist()
(True, [7.0, 15.0, 23.0])
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..settings import data_dir

GRID = 8


def mnist_to_grid(x: torch.Tensor, size_normalise: bool = True) -> torch.Tensor:
    """``[N, 784]`` MNIST in [0, 1] to ``[N, 64]``: each digit's bounding box stretched to 32x32
    (UCI's bitmaps were size-normalised; without it, ``size_normalise=False``, the image is only
    padded), then each 4x4 block's mean ink."""
    img = x.view(-1, 1, 28, 28)
    if size_normalise:
        boxes = []
        for one in img:
            rows = torch.nonzero(one[0].amax(1) > 0.1).flatten()
            cols = torch.nonzero(one[0].amax(0) > 0.1).flatten()
            if len(rows) == 0:
                boxes.append(torch.zeros(1, 1, 32, 32))
                continue
            crop = one[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            boxes.append(torch.nn.functional.interpolate(crop[None], size=(32, 32), mode="bilinear", align_corners=False))
        img = torch.cat(boxes)
    else:
        img = torch.nn.functional.pad(img, (2, 2, 2, 2))
    return torch.nn.functional.avg_pool2d(img, 4).flatten(1)


def rotated(x: torch.Tensor) -> torch.Tensor:
    """Each 8x8 image turned 90 degrees."""
    return torch.rot90(x.view(-1, GRID, GRID), 1, (1, 2)).reshape(-1, GRID * GRID)


def inverted(x: torch.Tensor) -> torch.Tensor:
    """Ink and paper swapped."""
    return 1.0 - x


def load_uci_digits(root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """UCI optical digits (1,797 images): ``[N, 64]`` in [0, 1] (counts 0-16 over 16) and labels."""
    path = (Path(root) if root else data_dir() / "uci-digits") / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"UCI digits not found at {path}: set METASTREAM_DATA to the shared data folder")
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return torch.from_numpy(rows[:, :64] / 16.0), torch.from_numpy(rows[:, 64].astype(np.int64))


def split_by_class(y: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(chosen, rest)`` indices: ``per_class`` of each class drawn with ``seed``, and the others."""
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    pick = torch.cat(chosen)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[pick] = False
    return pick, torch.nonzero(mask).flatten()
