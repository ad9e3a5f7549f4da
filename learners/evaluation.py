"""Few-shot evaluation: the score before and after adaptation, averaged over episodes with a 95%
interval, on fixed (seeded) episodes so two models are compared on the same tasks."""

from __future__ import annotations

from typing import Any

import torch

from .base import MetaLearner
from .training import mean_ci95


def evaluate_learner(learner: MetaLearner, tasks: Any, episodes: int = 600, steps: int | None = None,
                     seed: int = 12345, chunk: int = 50, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Score ``episodes`` tasks drawn with ``seed`` from ``tasks``; returns the JSON the CLI prints."""
    gen = torch.Generator().manual_seed(seed)
    before, after = [], []
    left = episodes
    while left > 0:
        n = min(chunk, left)
        result = learner.evaluate(tasks.sample(n, gen).to(device), steps)
        before.append(result["before"].cpu())
        after.append(result["after"].cpu())
        left -= n
    b, a = torch.cat(before), torch.cat(after)
    mb, cb = mean_ci95(b)
    ma, ca = mean_ci95(a)
    return {"metric": "mse" if learner.kind == "regression" else "accuracy", "before": mb, "after": ma,
            "ci95": ca, "ci95_before": cb, "episodes": episodes}
