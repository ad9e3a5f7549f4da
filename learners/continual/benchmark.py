"""The continual-learning benchmarks on MNIST, as one call: permuted MNIST (GEM protocol) and split
MNIST (class- or task-incremental), every method over several seeds, with mean and spread.

Protocols (the data is the shared 10,000-image MNIST test set, split 8,000 / 2,000, stratified):

- ``permuted``: 20 tasks of 1,000 training images, each with its own pixel permutation, tested on
  all 2,000 test images permuted the same way; MLP 784-100-100-10, one epoch, batch 10, SGD 0.1.
- ``split``: 5 tasks of 2 digits (about 1,600 training images each); 7 epochs (the anchors train
  one epoch on about 12,000 images per task: 7 epochs of 1,600 give about the same number of SGD
  steps), batch 10, SGD 0.1, same MLP.

The finetune (lower bound) and joint (upper bound) runs are always included; neither is a method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .mnist import ContinualTask, permuted_tasks, split_tasks
from .runner import CLASS_IL_ONLY, METHODS, NEEDS_TASK_ID, ContinualConfig, ContinualRun, run_method
from ..errors import ConfigError

BENCHMARKS = {
    "permuted": dict(scenario="domain-il", epochs=1, buffer=1000),
    "split": dict(scenario="class-il", epochs=7, buffer=200),
}
BOUNDS = ("finetune", "joint")
# Chosen by ``bench/continual_tune.py`` on validation splits of the training images (never the
# test images): (benchmark, buffer) -> method -> ContinualConfig fields. Other buffers use the
# nearest tuned buffer's values; other methods use the ContinualConfig defaults.
TUNED: dict[tuple[str, int], dict[str, dict]] = {
    ("permuted", 1000): {"er": {"lr": 0.1, "replay_batch": 10},
                         "der++": {"lr": 0.1, "replay_batch": 32, "der_alpha": 1.0, "der_beta": 1.0}},
    ("split", 200): {"er": {"lr": 0.1, "replay_batch": 10},
                     "der++": {"lr": 0.1, "replay_batch": 10, "der_alpha": 0.1, "der_beta": 1.0},
                     "der++wa": {"lr": 0.1, "replay_batch": 10, "der_alpha": 0.1, "der_beta": 1.0}},
    ("split", 1000): {"er": {"lr": 0.1, "replay_batch": 32},
                      "der++": {"lr": 0.1, "replay_batch": 10, "der_alpha": 0.1, "der_beta": 0.5},
                      "der++wa": {"lr": 0.1, "replay_batch": 10, "der_alpha": 0.3, "der_beta": 1.0}},
}


def tuned(benchmark: str, buffer: int, method: str) -> dict:
    """The validated hyperparameters of ``method`` for the tuned buffer nearest to ``buffer``."""
    sizes = [b for (name, b) in TUNED if name == benchmark]
    if not sizes:
        return {}
    nearest = min(sizes, key=lambda b: abs(b - buffer))
    return dict(TUNED[(benchmark, nearest)].get(method, {}))


def validation_tasks(tasks: Sequence[ContinualTask], fraction: float = 0.2, seed: int = 0) -> list[ContinualTask]:
    """The same tasks with ``fraction`` of each task's *training* images held out as its test set:
    hyperparameters are chosen on these, never on the benchmark's test images."""
    gen = torch.Generator().manual_seed(seed + 1000)
    out = []
    for t in tasks:
        order = torch.randperm(len(t.train_y), generator=gen)
        k = int(len(order) * fraction)
        held, kept = order[:k], order[k:]
        out.append(ContinualTask(t.train_x[kept], t.train_y[kept], t.train_x[held], t.train_y[held], t.classes))
    return out


def default_methods(scenario: str) -> list[str]:
    return [m for m in METHODS if m not in BOUNDS and not (scenario == "class-il" and m in NEEDS_TASK_ID)
            and not (scenario != "class-il" and m in CLASS_IL_ONLY)]


@dataclass
class MethodResult:
    method: str
    runs: list[ContinualRun] = field(default_factory=list)

    def stat(self, name: str) -> tuple[float, float]:
        values = [getattr(r.metrics, name) if name != "forgetting" else r.metrics.mean_forgetting for r in self.runs]
        return float(np.mean(values)), float(np.std(values))

    @property
    def seconds(self) -> float:
        return float(np.mean([r.seconds for r in self.runs]))

    @property
    def mean_R(self) -> np.ndarray:
        return np.mean([r.R for r in self.runs], axis=0)


@dataclass
class BenchmarkResult:
    benchmark: str
    scenario: str
    buffer: int
    seeds: int
    epochs: int
    methods: dict[str, MethodResult]
    iterations: int = 1

    def summary(self) -> dict:
        """The JSON of ``continual-bench --json``."""
        out = {}
        for name, res in self.methods.items():
            acc, acc_sd = res.stat("acc")
            bwt, bwt_sd = res.stat("bwt")
            fgt, fgt_sd = res.stat("forgetting")
            out[name] = {"acc": acc, "bwt": bwt, "forgetting": fgt, "acc_std": acc_sd, "bwt_std": bwt_sd,
                         "forgetting_std": fgt_sd, "fwt": res.stat("fwt")[0], "seconds": res.seconds,
                         "bound": name in BOUNDS}
        return {"benchmark": self.benchmark, "scenario": self.scenario, "buffer": self.buffer, "seeds": self.seeds,
                "epochs": self.epochs, "iterations": self.iterations, "methods": out}

    COLUMNS = ("method", "ACC", "BWT", "forgetting", "FWT", "seconds")

    def rows(self) -> list[list[str]]:
        """One row per method (bounds labelled), mean ± spread over seeds, under :attr:`COLUMNS`."""
        rows = []
        for name, m in self.summary()["methods"].items():
            label = f"{name} ({'low' if name == 'finetune' else 'high'})" if m["bound"] else name
            rows.append([label, f"{m['acc']:.3f}±{m['acc_std']:.3f}", f"{m['bwt']:+.3f}±{m['bwt_std']:.3f}",
                         f"{m['forgetting']:.3f}±{m['forgetting_std']:.3f}", f"{m['fwt']:+.3f}", f"{m['seconds']:.1f}"])
        return rows

    def title(self) -> str:
        steps = f", {self.iterations} SGD steps per batch" if self.iterations > 1 else ""
        return (f"{self.benchmark} MNIST, {self.scenario}, buffer {self.buffer}, {self.epochs} epoch(s), "
                f"{self.seeds} seed(s){steps}: mean ± spread")

    def best_method(self) -> str | None:
        candidates = [m for m in self.methods if m not in BOUNDS]
        return max(candidates, key=lambda m: self.methods[m].stat("acc")[0]) if candidates else None


def run_benchmark(benchmark: str, scenario: str | None = None, methods: Sequence[str] | None = None, buffer: int | None = None,
                  seeds: int = 1, epochs: int | None = None, iterations: int = 1,
                  progress: Callable[[str, int], None] | None = None) -> BenchmarkResult:
    """Run ``methods`` (and the two bounds) for ``seeds`` seeds; ``progress(method, seed)`` after each run.
    ``iterations`` > 1 takes that many SGD steps per incoming batch (every method and bound alike):
    more computation on the same single pass over the data, outside the GEM protocol's one step."""
    if benchmark not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {benchmark!r}; choose from {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[benchmark]
    scenario = scenario or spec["scenario"]
    if benchmark == "permuted" and scenario != "domain-il":
        raise ConfigError("permuted MNIST has all ten classes in every task: its scenario is domain-il")
    if benchmark == "split" and scenario not in ("class-il", "task-il"):
        raise ConfigError("split MNIST is class-il or task-il")
    chosen = list(methods) if methods else default_methods(scenario)
    for m in chosen:
        if m not in METHODS:
            raise ConfigError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
        if scenario == "class-il" and m in NEEDS_TASK_ID:
            raise ConfigError(f"{m} needs the task's identity at test time, which class-il does not give")
    order = ["finetune", *[m for m in chosen if m not in BOUNDS], "joint"]
    buffer = spec["buffer"] if buffer is None else buffer
    epochs = spec["epochs"] if epochs is None else epochs
    results = {m: MethodResult(m) for m in order}
    for seed in range(seeds):
        tasks = permuted_tasks(seed=seed) if benchmark == "permuted" else split_tasks()
        for m in order:
            cfg = ContinualConfig(epochs=epochs, buffer=buffer, seed=seed, iterations=iterations, **tuned(benchmark, buffer, m))
            results[m].runs.append(run_method(m, tasks, scenario, cfg))
            if progress is not None:
                progress(m, seed)
    return BenchmarkResult(benchmark, scenario, buffer, seeds, epochs, results, iterations)
