"""A simulated fleet of agents for demos, tests and benchmarks: each agent works on one sine task
at a time (Finn et al.'s distribution) and reports its points; after the drift, tasks come from a
changed distribution (double frequency), which the current champion adapts to poorly."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass
class SineFleet:
    agents: int = 8
    points_per_task: int = 40
    seed: int = 0
    frequency_after_drift: float = 2.0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._task_no = 0
        self.drifted = False

    def drift(self, drifted: bool = True) -> None:
        self.drifted = drifted

    def sample_task(self, drifted: bool | None = None) -> tuple[str, np.ndarray, np.ndarray]:
        """One task's points: ``(task_id, x [n, 1], y [n, 1])``."""
        drifted = self.drifted if drifted is None else drifted
        self._task_no += 1
        amp = self._rng.uniform(0.1, 5.0)
        phase = self._rng.uniform(0, math.pi)
        freq = self.frequency_after_drift if drifted else 1.0
        x = self._rng.uniform(-5, 5, size=(self.points_per_task, 1)).astype("f4")
        y = (amp * np.sin(freq * x - phase)).astype("f4")
        tag = "d" if drifted else "n"
        return f"{tag}-{self.seed}-{self._task_no}", x, y

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
