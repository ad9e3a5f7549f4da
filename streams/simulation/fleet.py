"""Simulated fleets of agents for demos, tests and benchmarks: each agent works on one task at a
time and reports its points; after the drift, tasks come from a changed distribution, which the
current champion adapts to poorly. ``SineFleet``: Finn et al.'s sine tasks, then double frequency.
``DigitFleet``: 5-way few-shot MNIST digit tasks, then the images rotated a quarter turn."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from streams.catalog.presets import DIGIT_IMAGE_SIZE


class _Drifting:
    """What every fleet shares: a seeded generator, numbered tasks, and the drift switch."""

    seed: int
    drifted: bool

    def _start(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._task_no = 0
        self.drifted = False

    def drift(self, drifted: bool = True) -> None:
        self.drifted = drifted

    @property
    def tasks_sampled(self) -> int:
        return self._task_no

    def _next_task(self, drifted: bool | None) -> tuple[bool, int]:
        """Whether the next task is drifted (default: the fleet's state) and its number."""
        self._task_no += 1
        return (self.drifted if drifted is None else drifted), self._task_no


@dataclass
class SineFleet(_Drifting):
    agents: int = 8
    points_per_task: int = 40
    seed: int = 0
    frequency_after_drift: float = 2.0

    def __post_init__(self) -> None:
        self._start()

    def sample_task(self, drifted: bool | None = None) -> tuple[str, np.ndarray, np.ndarray]:
        """One task's points: ``(task_id, x [n, 1], y [n, 1])``."""
        drifted, number = self._next_task(drifted)
        amp = self._rng.uniform(0.1, 5.0)
        phase = self._rng.uniform(0, math.pi)
        freq = self.frequency_after_drift if drifted else 1.0
        x = self._rng.uniform(-5, 5, size=(self.points_per_task, 1)).astype("f4")
        y = (amp * np.sin(freq * x - phase)).astype("f4")
        tag = "d" if drifted else "n"
        return f"{tag}-{self.seed}-{number}", x, y

    def batches(self, rows: int = 64) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
        """Endless message-sized batches mixing the agents' current tasks."""
        while True:
            tids, xs, ys = [], [], []
            while sum(len(x) for x in xs) < rows:
                tid, x, y = self.sample_task()
                tids += [tid] * len(x)
                xs.append(x)
                ys.append(y)
            x, y = np.concatenate(xs), np.concatenate(ys)
            yield tids[:rows], x[:rows], y[:rows]


async def publish_tasks(publisher, fleet: SineFleet, rows: float, model_id: str = "sine") -> int:
    """Publish whole tasks from ``fleet`` until at least ``rows`` experiences went out; returns how many."""
    sent = 0
    while sent < rows:
        tid, x, y = fleet.sample_task()
        await publisher.publish(model_id, x, y, [tid] * len(x))
        sent += len(x)
    return sent


@dataclass
class DigitFleet(_Drifting):
    """A fleet meeting few-shot *classification* tasks: each task is ``ways`` MNIST digits with
    ``per_class`` images of each, labelled ``0 .. ways-1`` in the task's own order (a label names a
    class only within its task), images 2x2-pooled to 14x14 and flattened to 196 features. After the
    drift the images arrive rotated a quarter turn. ``split="test"`` draws from the 2,000 images the
    continual benchmarks test on; the default, the other 8,000 (``../shared/data/mnist``)."""

    ways: int = 5
    per_class: int = 4
    seed: int = 0
    split: str = "train"

    image_size = DIGIT_IMAGE_SIZE

    def __post_init__(self) -> None:
        if self.split not in ("train", "test"):
            raise ValueError(f"split must be train or test, not {self.split!r}")
        self._images, labels = _pooled_digits(self.split)
        self._by_class = [np.flatnonzero(labels == c) for c in range(10)]
        self._start()

    def sample_task(self, drifted: bool | None = None) -> tuple[str, np.ndarray, np.ndarray]:
        """One task's points: ``(task_id, x [ways * per_class, 196], y [ways * per_class, 1])``."""
        drifted, number = self._next_task(drifted)
        digits = self._rng.choice(10, self.ways, replace=False)
        pick = np.concatenate([self._rng.choice(self._by_class[d], self.per_class, replace=False) for d in digits])
        x = self._images[pick]
        if drifted:
            x = np.rot90(x, 1, axes=(1, 2))
        y = np.repeat(np.arange(self.ways, dtype="f4"), self.per_class)[:, None]
        order = self._rng.permutation(len(pick))
        tag = "r" if drifted else "u"
        return f"{tag}-{self.seed}-{number}", np.ascontiguousarray(x.reshape(len(pick), -1)[order]), y[order]

    @staticmethod
    def split_support(x: np.ndarray, y: np.ndarray, shots: int = 1) -> tuple[np.ndarray, ...]:
        """The first ``shots`` rows of each class as the support: ``(support_x, support_y, x, y)``."""
        labels = y[:, 0].astype("int64")
        pick = np.concatenate([np.flatnonzero(labels == c)[:shots] for c in np.unique(labels)])
        return x[pick], labels[pick], x, labels

    def episode(self, drifted: bool | None = None, shots: int = 1) -> tuple[np.ndarray, ...]:
        """One task as an evaluation episode: ``(support_x [ways*shots, 196], support_y, query_x
        [ways*(per_class-shots), 196], query_y)``, the first ``shots`` images of each class in the
        support and the rest in the query, labels int64."""
        _, x, y = self.sample_task(drifted)
        order = np.argsort(y[:, 0], kind="stable")
        x, y = x[order].reshape(self.ways, self.per_class, -1), y[order, 0].reshape(self.ways, self.per_class).astype("int64")
        return (x[:, :shots].reshape(self.ways * shots, -1), y[:, :shots].reshape(-1),
                x[:, shots:].reshape(-1, x.shape[-1]), y[:, shots:].reshape(-1))


@functools.lru_cache(maxsize=2)
def _pooled_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images of one split, 2x2-pooled to 14x14 (read once per process)."""
    from learners.continual.mnist import load_mnist_split

    tx, ty, vx, vy = load_mnist_split()
    x, y = (tx, ty) if split == "train" else (vx, vy)
    return x.numpy().reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).astype("f4"), y.numpy()


async def publish_served_tasks(publisher, fleet, subscriber, rows: float, model_id: str, agents: int = 40, shots: int = 10,
                               faults: dict[int, float] | None = None, slow: dict[int, float] | None = None,
                               on_report=None) -> int:
    """Like :func:`publish_tasks`, with each task met by one of ``agents`` simulated agents that
    uses the version the subscriber serves it (its cohort's: champion, canary or A/B arm), adapts it
    on the task's first points and reports, per point, its loss (squared error, or cross-entropy),
    the version and how long the prediction took. Without a served version yet, nothing is reported.
    ``faults`` simulates versions that do worse in production than offline: version -> factor on
    its reported losses; ``slow``, versions whose predictions take longer: version -> extra ms (fault
    injections for tests and the self-healing benchmark). ``on_report(agent, version, losses,
    latency_ms)`` sees what each agent reports."""
    import time as _time

    import torch

    sent = 0
    while sent < rows:
        tid, x, y = fleet.sample_task()
        agent = f"agent-{fleet.tasks_sampled % agents}"
        model = subscriber.serve(model_id, agent)
        report = {}
        if model is not None:
            started = _time.perf_counter()
            if model.learner.kind == "classification":
                sx, sy, _, _ = fleet.split_support(x, y, 1)
                with torch.no_grad():
                    logits = model.predict(model.adapt(sx, sy), x)
                losses = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y[:, 0]).long(), reduction="none").numpy()
            else:
                prediction = model.predict(model.adapt(x[:shots], y[:shots]), x).detach().numpy()
                losses = ((prediction - y) ** 2).mean(axis=1)
            elapsed_ms = (_time.perf_counter() - started) * 1000 / len(x) + (slow or {}).get(model.version, 0.0)
            losses = losses * (faults or {}).get(model.version, 1.0)
            report = dict(losses=losses, model_version=model.version, latencies_ms=np.full(len(x), elapsed_ms, "f4"))
            if on_report is not None:
                on_report(agent, model.version, losses, elapsed_ms)
        await publisher.publish(model_id, x, y, [tid] * len(x), agent_id=agent, **report)
        sent += len(x)
    return sent
