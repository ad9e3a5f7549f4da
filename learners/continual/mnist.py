"""MNIST from the shared data folder (the 10,000-image test set in IDX format), split
deterministically and stratified into 8,000 training and 2,000 test images (200 per class, seed 0),
and the two continual benchmarks built from it: permuted MNIST and split MNIST."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..settings import data_dir

class ContinualTask(NamedTuple):
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[int, ...] | None = None  # the task's classes (split MNIST); None: all ten


IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: {arr.size} values for shape {shape}")
    return arr.reshape(shape)


def load_mnist_split(root: str | Path | None = None, test_per_class: int = 200, seed: int = 0):
    """``(train_x, train_y, test_x, test_y)``: float32 ``[N, 784]`` in [0, 1] and int64 labels."""
    folder = Path(root) if root else data_dir() / "mnist"
    if not (folder / IMAGES).is_file():
        raise FileNotFoundError(f"MNIST files not found in {folder}: set METASTREAM_DATA to the shared data folder")
    x = torch.from_numpy(_read_idx(folder / IMAGES).reshape(-1, 784).astype(np.float32) / 255.0)
    y = torch.from_numpy(_read_idx(folder / LABELS).astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    test_idx = []
    for c in range(10):
        members = torch.nonzero(y == c).flatten()
        test_idx.append(members[torch.randperm(len(members), generator=gen)[:test_per_class]])
    test = torch.cat(test_idx)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[test] = False
    train = torch.nonzero(mask).flatten()
    train = train[torch.randperm(len(train), generator=gen)]
    return x[train], y[train], x[test], y[test]


def permuted_tasks(n_tasks: int = 20, per_task: int = 1000, seed: int = 0, root=None):
    """Permuted MNIST (GEM protocol): each task applies its own fixed pixel permutation and draws
    ``per_task`` training images; every task is tested on all 2,000 test images, permuted."""
    tx, ty, vx, vy = load_mnist_split(root)
    gen = torch.Generator().manual_seed(seed + 1)
    tasks = []
    for _ in range(n_tasks):
        perm = torch.randperm(784, generator=gen)
        pick = torch.randperm(len(tx), generator=gen)[:per_task]
        tasks.append(ContinualTask(tx[pick][:, perm], ty[pick], vx[:, perm], vy))
    return tasks


def split_tasks(n_tasks: int = 5, root=None) -> list[ContinualTask]:
    """Split MNIST: task ``i`` holds digits ``2i`` and ``2i+1`` (about 1,600 training and exactly
    400 test images each, from the 8,000 / 2,000 split)."""
    tx, ty, vx, vy = load_mnist_split(root)
    tasks = []
    for i in range(n_tasks):
        classes = (2 * i, 2 * i + 1)
        train = (ty == classes[0]) | (ty == classes[1])
        test = (vy == classes[0]) | (vy == classes[1])
        tasks.append(ContinualTask(tx[train], ty[train], vx[test], vy[test], classes))
    return tasks
