"""Sine-wave regression tasks exactly as Finn et al. (2017).

Amplitude ~ U[0.1, 5], phase ~ U[0, pi], inputs ~ U[-5, 5]; each task gives K support and K query
points of ``y = A sin(x - phase)``.

>>> import torch
>>> tasks = SineTasks(shots=10, queries=10)
>>> batch = tasks.sample(4, torch.Generator().manual_seed(0))
>>> tuple(batch.support_x.shape), tuple(batch.query_y.shape)
((4, 10, 1), (4, 10, 1))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import TaskBatch


@dataclass(frozen=True)
class SineTasks:
    shots: int = 10
    queries: int = 10
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    kind = "regression"

    def sample_params(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        amp = torch.empty(n).uniform_(*self.amplitude, generator=gen)
        phase = torch.empty(n).uniform_(*self.phase, generator=gen)
        return amp, phase

    def sample_x(self, n: int, points: int, gen: torch.Generator) -> torch.Tensor:
        return torch.empty(n, points, 1).uniform_(*self.x_range, generator=gen)

    @staticmethod
    def curve(x: torch.Tensor, amp: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """``A sin(x - phase)`` for per-task amplitude and phase broadcast over points."""
        return amp.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))

    def sample(self, n: int, gen: torch.Generator) -> TaskBatch:
        amp, phase = self.sample_params(n, gen)
        xs = self.sample_x(n, self.shots, gen)
        xq = self.sample_x(n, self.queries, gen)
        return TaskBatch(xs, self.curve(xs, amp, phase), xq, self.curve(xq, amp, phase))
