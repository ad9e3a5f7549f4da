"""What an update does to a mixture of meta-models before it trains (``learners/transfer/mixture.py``):
merge components that have converged, and, once per era of the forgetting guard (that is, once
per drift alarm), spawn a component for the new era's tasks if no component fits them. The new
component starts as a copy of the best fit and trains on the new era's tasks alone for half the
update's iterations, so the routed training that follows has something to route to.

A mixture takes no distillation or EWC toward its parent: its old regimes are kept by routing
(each component trains only on its own tasks), and a pull toward the parent would drag a spawned
component back to the one it was copied from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..transfer.mixture import MetaMixture
from .replay import TaskReplayBuffer

SAMPLE = 64  # tasks each check looks at


@dataclass(frozen=True)
class MixtureChange:
    """What one update did to the mixture's components (reported with the version)."""

    components: int
    spawned: bool = False
    merged: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return {"components": self.components, "spawned": self.spawned, "merged": self.merged}


def reshape_mixture(learner, candidate: MetaMixture, buffer: TaskReplayBuffer, train: list[str], old: set[str],
                    era: int | None, iterations: int, meta_batch: int, gen: torch.Generator) -> MixtureChange:
    """Merge, then maybe spawn, on ``candidate`` (a copy of the champion) in place. ``learner`` is
    the ``OnlineMetaLearner`` that splits buffered tasks; ``old`` the ids of earlier eras' tasks."""

    def sample(ids: list[str], n: int) -> list[str]:
        return [ids[i] for i in torch.randint(len(ids), (n,), generator=gen).tolist()]

    merged = 0
    if len(candidate.model.components) > 1 and train:
        batch = learner.task_batch(buffer, sample(train, SAMPLE))
        merged = candidate.merge_converged(batch) if batch is not None else 0
    recent = [t for t in train if t not in old]
    known = [t for t in train if t in old]
    spawned = False
    if era is not None and era > int(candidate.model.checked_era) and known and len(recent) >= candidate.min_tasks:
        candidate.model.checked_era.fill_(era)
        new_batch, known_batch = learner.task_batch(buffer, recent[-SAMPLE:]), learner.task_batch(buffer, sample(known, SAMPLE))

        def fit(child) -> None:
            for _ in range(iterations):
                batch = learner.task_batch(buffer, sample(recent, meta_batch))
                if batch is not None:
                    child.meta_update(batch)

        if new_batch is not None and known_batch is not None:
            spawned = candidate.maybe_spawn(new_batch, known_batch, fit)
    return MixtureChange(len(candidate.model.components), spawned, merged)
