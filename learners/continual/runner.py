"""Train a classifier on a sequence of tasks with a continual-learning method and record the
accuracy matrix. Methods are compositions around one SGD step: ``finetune`` (nothing), ``ewc``
(online EWC penalty), ``er`` (reservoir replay, one replayed minibatch per step), ``ewc+er``;
``joint`` trains on all tasks at once (the upper bound)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .ewc import EWC
from .metrics import ContinualMetrics, accuracy_matrix_metrics
from .replay import ReservoirBuffer

METHODS = ("finetune", "ewc", "er", "ewc+er", "joint")


def mlp(hidden: int = 100) -> nn.Module:
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))


@dataclass
class ContinualRun:
    method: str
    R: np.ndarray
    baseline: np.ndarray
    metrics: ContinualMetrics
    seconds: float


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def run_method(method: str, tasks, *, lr: float = 0.1, batch: int = 10, epochs: int = 1, buffer: int = 1000,
               ewc_lambda: float = 5.0, seed: int = 0) -> ContinualRun:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    torch.manual_seed(seed)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    T = len(tasks)
    baseline = np.array([_accuracy(model, t[2], t[3]) for t in tasks])
    R = np.zeros((T, T))
    ewc = EWC(model, lam=ewc_lambda, online=True, seed=seed) if "ewc" in method else None
    replay = ReservoirBuffer(buffer, seed=seed) if "er" in method.split("+") else None
    start = time.perf_counter()

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        if replay is not None and len(replay):
            rx, ry = replay.sample(batch)
            loss = loss + F.cross_entropy(model(rx), ry)
        if ewc is not None and ewc.terms:
            loss = loss + ewc.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()

    if method == "joint":
        x = torch.cat([t[0] for t in tasks])
        y = torch.cat([t[1] for t in tasks])
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch):
                step(x[order[i : i + batch]], y[order[i : i + batch]])
        R[:] = [_accuracy(model, t[2], t[3]) for t in tasks]
    else:
        for i, (x, y, _, _) in enumerate(tasks):
            for _ in range(epochs):
                order = torch.randperm(len(x), generator=gen)
                for k in range(0, len(x), batch):
                    idx = order[k : k + batch]
                    step(x[idx], y[idx])
                    if replay is not None:
                        replay.add(x[idx], y[idx])
            if ewc is not None:
                ewc.consolidate(x)
            R[i] = [_accuracy(model, t[2], t[3]) for t in tasks]
    return ContinualRun(method, R, baseline, accuracy_matrix_metrics(R, baseline), time.perf_counter() - start)
