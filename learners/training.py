"""The meta-training loop: sample a meta-batch, meta-update, log, validate, until the iteration
count or the time budget runs out. The meta learning rate follows a cosine decay over whichever
limit applies; Ctrl-C ends the loop cleanly so the caller can still save: the first one after the
meta-update under way (an interrupt raised inside a ``torch.func`` transform leaves its state
half-unwound and the model's ``state_dict`` unreadable), a second one at once."""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .base import MetaLearner
from .errors import ConfigError


@dataclass
class TrainResult:
    iterations: int
    seconds: float
    interrupted: bool
    history: list[dict[str, Any]] = field(default_factory=list)


def mean_ci95(values: torch.Tensor) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% interval.

    >>> mean_ci95(torch.tensor([1.0, 1.0, 1.0]))
    (1.0, 0.0)
    """
    v = values.double().flatten()
    if v.numel() < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(1.96 * v.std(unbiased=True) / math.sqrt(v.numel()))


class StopOnInterrupt:
    """While entered (in the main thread, where SIGINT is not ignored): Ctrl-C sets :attr:`asked`
    instead of raising; a second Ctrl-C raises ``KeyboardInterrupt``."""

    def __enter__(self) -> "StopOnInterrupt":
        self.asked, self._previous = False, None
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._ask)
        return self

    def _ask(self, signum, frame) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _set_rates(learner: MetaLearner, base_lrs: list[float], factor: float) -> None:
    for g, lr in zip(learner.optimizer.param_groups, base_lrs):
        g["lr"] = lr * factor


class _TrainingClock:
    """Seconds of meta-training: wall time less the time validation took; ``due`` once the training
    time passes each of ``marks`` (seconds)."""

    def __init__(self, marks: list[float]) -> None:
        self.start, self.validating, self.marks = time.perf_counter(), 0.0, marks

    def training_s(self) -> float:
        return time.perf_counter() - self.start - self.validating

    def due(self) -> bool:
        passed = False
        while self.marks and self.training_s() >= self.marks[0]:
            self.marks.pop(0)
            passed = True
        return passed

    def timed(self, validate: Callable[[], dict[str, float]]) -> dict[str, float]:
        began = time.perf_counter()
        try:
            return validate()
        finally:
            self.validating += time.perf_counter() - began


def meta_train(
    learner: MetaLearner,
    sample: Callable[[torch.Generator], Any],
    gen: torch.Generator,
    *,
    iterations: int | None = None,
    budget_s: float | None = None,
    device: torch.device | str = "cpu",
    log_every: int = 10,
    validate: Callable[[], dict[str, float]] | None = None,
    validate_every: int = 500,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    cosine: bool = True,
    validate_at_s: tuple[float, ...] = (),
) -> TrainResult:
    """Run meta-updates until ``iterations`` or ``budget_s`` (whichever comes first).

    ``sample(gen)`` returns a :class:`TaskBatch`. With ``iterations`` alone the run is fully
    deterministic; a time budget makes the number of steps depend on the machine's speed. The
    budget counts meta-training time: the time ``validate`` takes is not spent from it.
    ``validate_at_s`` validates (also) when the training time first passes each of those seconds
    (a budget-aware search's rungs).
    """
    if iterations is None and budget_s is None:
        raise ConfigError("give iterations, a time budget, or both")
    base_lrs = [g["lr"] for g in learner.optimizer.param_groups]
    history: list[dict[str, Any]] = []
    clock = _TrainingClock(sorted(validate_at_s))
    i, interrupted, running = 0, False, {}  # running: smoothed training metrics
    stop = StopOnInterrupt()
    try:
        with stop:
            while not stop.asked:
                frac = max(i / iterations if iterations else 0.0, clock.training_s() / budget_s if budget_s else 0.0)
                if frac >= 1.0:
                    break
                if cosine:
                    _set_rates(learner, base_lrs, 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
                batch = sample(gen).to(device)
                metrics = learner.meta_update(batch)
                for k, v in metrics.items():
                    running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
                i += 1
                record: dict[str, Any] | None = None
                if i % log_every == 0:
                    record = {"iteration": i, "seconds": round(clock.training_s(), 3), "progress": frac,
                              "lr": learner.optimizer.param_groups[0]["lr"], **{f"train_{k}": v for k, v in running.items()}}
                due = clock.due()
                if validate is not None and (i % validate_every == 0 or due):
                    record = record or {"iteration": i, "seconds": round(clock.training_s(), 3), "progress": frac}
                    record.update({f"val_{k}": v for k, v in clock.timed(validate).items()})
                if record is not None:
                    history.append(record)
                    if on_log:
                        on_log(record)
    except KeyboardInterrupt:
        interrupted = True
    interrupted = interrupted or stop.asked
    _set_rates(learner, base_lrs, 1.0)
    return TrainResult(i, clock.training_s(), interrupted, history)
