"""Train a classifier on a sequence of tasks with one continual-learning method and record the
accuracy matrix. Methods are compositions around one SGD step, not forks of it:

- ``finetune``: nothing (the lower bound); ``joint``: all tasks at once (the upper bound)
- ``ewc``: online EWC penalty; ``er``: reservoir replay, one replayed minibatch per step;
  ``ewc+er``: both
- ``der`` / ``der++``: replay of stored logits (plus, for DER++, of labels)
- ``der++wa``: DER++ plus weight aligning of the last layer after each task (class-il: corrects
  the bias toward the newest classes; elsewhere it changes nothing and is left out by default)
- ``lwf``: distillation from the model as it was after the previous task
- ``progressive``: a new column per task (needs the task's identity at test time)

Scenarios: ``domain-il`` (every task has all ten classes, as permuted MNIST), ``class-il`` (one
head over every class seen; the task is not given at test time), ``task-il`` (the task is given:
only its classes compete).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import MLP
from .align import weight_align
from .distill import LwF
from .ewc import EWC
from .metrics import ContinualMetrics, accuracy_matrix_metrics
from .mnist import ContinualTask
from .progressive import ProgressiveNet
from .replay import ReservoirBuffer
from ..errors import ConfigError

METHODS = ("finetune", "ewc", "er", "ewc+er", "der", "der++", "der++wa", "lwf", "progressive", "joint")
STORES_LOGITS = ("der", "der++", "der++wa")
REPLAYS = ("er", "ewc+er", *STORES_LOGITS)
SCENARIOS = ("domain-il", "class-il", "task-il")
NEEDS_TASK_ID = ("progressive",)
CLASS_IL_ONLY = ("der++wa",)  # identical to another method outside class-il


def mlp(hidden: int = 100, inputs: int = 784, classes: int = 10) -> nn.Module:
    """The benchmarks' classifier: the learners' :class:`~learners.backbones.MLP`, 784-100-100-10."""
    return MLP(hidden=hidden, layers=2, inputs=inputs, outputs=classes)


@dataclass
class ContinualConfig:
    """Hyperparameters of every method (fixed in advance from the papers, not tuned on the test)."""

    lr: float = 0.1
    batch: int = 10
    replay_batch: int | None = None  # items replayed per step (default: the stream's batch)
    iterations: int = 1  # SGD steps per incoming batch, each with a fresh replay sample (as MER, MIR)
    epochs: int = 1
    buffer: int = 1000
    ewc_lambda: float = 5.0
    der_alpha: float = 0.3  # DER: weight of the logit-matching term
    der_beta: float = 0.5  # DER++: weight of the replayed labels' cross-entropy
    lwf_weight: float = 1.0
    temperature: float = 2.0
    seed: int = 0


@dataclass
class ContinualRun:
    method: str
    scenario: str
    R: np.ndarray
    baseline: np.ndarray
    metrics: ContinualMetrics
    seconds: float
    model: nn.Module
    buffer: ReservoirBuffer | None = None  # what a replay method still holds at the end


class _Heads:
    """Which logits compete for an item: all of them, or (task-il) only its task's classes."""

    def __init__(self, tasks: Sequence[ContinualTask], scenario: str, classes: int = 10) -> None:
        self.task_il = scenario == "task-il"
        self.masks = torch.ones(len(tasks), classes, dtype=torch.bool)
        self.task_of_label = torch.zeros(classes, dtype=torch.long)
        if self.task_il:
            self.masks[:] = False
            for t, task in enumerate(tasks):
                if task.classes is None:
                    raise ConfigError("task-il needs tasks with their classes (split MNIST)")
                self.masks[t, list(task.classes)] = True
                self.task_of_label[list(task.classes)] = t

    def for_labels(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.task_il:
            return logits
        return logits.masked_fill(~self.masks[self.task_of_label[y]], -1e9)

    def for_task(self, logits: torch.Tensor, task: int) -> torch.Tensor:
        return logits.masked_fill(~self.masks[task], -1e9) if self.task_il else logits


def run_method(method: str, tasks: Sequence[ContinualTask], scenario: str = "domain-il",
               config: ContinualConfig | None = None, **overrides) -> ContinualRun:
    """Train ``method`` on ``tasks`` in order; ``R[i, j]`` is the test accuracy on task ``j`` after task ``i``."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if method in NEEDS_TASK_ID and scenario == "class-il":
        raise ConfigError(f"{method} picks a column by task identity, which class-il does not give; use task-il or domain-il")
    cfg = config or ContinualConfig()
    for k, v in overrides.items():
        setattr(cfg, k, v)
    tasks = [ContinualTask(*t) for t in tasks]
    torch.manual_seed(cfg.seed)
    run = _MethodRun(method, tasks, scenario, cfg)
    T = len(tasks)
    baseline = np.array([run.accuracy(j, 0) for j in range(T)])
    R = np.zeros((T, T))
    start = time.perf_counter()
    if method == "joint":
        run.epochs(torch.cat([t.train_x for t in tasks]), torch.cat([t.train_y for t in tasks]))
        R[:] = [run.accuracy(j, T - 1) for j in range(T)]
    else:
        seen: list[int] = []
        for i, task in enumerate(tasks):
            run.learn_task(i, task, seen)
            R[i] = [run.accuracy(j, i) for j in range(T)]
    return ContinualRun(method, scenario, R, baseline, accuracy_matrix_metrics(R, baseline), time.perf_counter() - start, run.model,
                        run.replay)


class _MethodRun:
    """One method's model, optimiser and continual-learning terms while it learns the tasks in order."""

    def __init__(self, method: str, tasks: list[ContinualTask], scenario: str, cfg: ContinualConfig) -> None:
        self.method, self.tasks, self.scenario, self.cfg = method, tasks, scenario, cfg
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.heads = _Heads(tasks, scenario)
        self.progressive = method == "progressive"
        if self.progressive:
            self.model: nn.Module = ProgressiveNet(784, [100, 100], 10)
            self.model.add_column()
        else:
            self.model = mlp()
        self.current = 0  # the task being trained (picks the column of a progressive net)
        self.opt = self.optimizer()
        self.ewc = EWC(self.model, lam=cfg.ewc_lambda, online=True, seed=cfg.seed) if method in ("ewc", "ewc+er") else None
        self.replay = ReservoirBuffer(cfg.buffer, seed=cfg.seed) if method in REPLAYS else None
        self.lwf = LwF(cfg.lwf_weight, cfg.temperature) if method == "lwf" else None
        self.rb = cfg.replay_batch or cfg.batch

    def forward(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        return self.model(x, task=self.current if task is None else task) if self.progressive else self.model(x)

    def optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([p for p in self.model.parameters() if p.requires_grad], lr=self.cfg.lr)

    def step(self, x: torch.Tensor, y: torch.Tensor, store: bool = True) -> None:
        cfg, heads, replay, method = self.cfg, self.heads, self.replay, self.method
        logits = self.forward(x)
        loss = F.cross_entropy(heads.for_labels(logits, y), y)
        if replay is not None and len(replay):
            if method in STORES_LOGITS:
                rx, _, rz = replay.sample_with_logits(self.rb)
                loss = loss + cfg.der_alpha * F.mse_loss(self.forward(rx), rz)
                if method != "der":
                    rx, ry, _ = replay.sample_with_logits(self.rb)
                    loss = loss + cfg.der_beta * F.cross_entropy(heads.for_labels(self.forward(rx), ry), ry)
            else:
                rx, ry = replay.sample(self.rb)
                loss = loss + F.cross_entropy(heads.for_labels(self.forward(rx), ry), ry)
        if self.ewc is not None and self.ewc.terms:
            loss = loss + self.ewc.penalty()
        if self.lwf is not None:
            loss = loss + self.lwf.penalty(x, logits)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if replay is not None and store:
            replay.add(x, y, logits.detach() if method in STORES_LOGITS else None)

    def accuracy(self, task: int, trained: int) -> float:
        t = self.tasks[task]
        with torch.no_grad():
            logits = self.forward(t.test_x, min(task, trained) if self.progressive else None)
            return float((self.heads.for_task(logits, task).argmax(-1) == t.test_y).float().mean())

    def epochs(self, x: torch.Tensor, y: torch.Tensor) -> None:
        cfg = self.cfg
        for _ in range(cfg.epochs):
            order = torch.randperm(len(x), generator=self.gen)
            for k in range(0, len(x), cfg.batch):
                idx = order[k : k + cfg.batch]
                for it in range(cfg.iterations):
                    self.step(x[idx], y[idx], store=it == 0)

    def learn_task(self, i: int, task: ContinualTask, seen: list[int]) -> None:
        """Task ``i`` in its turn, then what each method does between tasks (``seen``: classes so far, extended)."""
        if self.progressive and i > 0:
            self.model.add_column()
            self.opt = self.optimizer()
        self.current = i
        self.epochs(task.train_x, task.train_y)
        if self.ewc is not None:
            self.ewc.consolidate(task.train_x)
        old = sorted(set(seen))
        seen += list(task.classes) if task.classes is not None else []
        if self.method == "der++wa" and self.scenario == "class-il":
            weight_align(self.model[-1], old, [c for c in task.classes if c not in old])
        if self.lwf is not None:
            self.lwf.consolidate(self.model, sorted(set(seen)) if task.classes is not None else None)
