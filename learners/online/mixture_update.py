"""What an update does to a mixture of meta-models before it trains (``learners/transfer/mixture.py``):
merge components that have converged, and, at most once per era of the forgetting guard (that
is, once per drift alarm), spawn a component for the newest tasks if no component fits them as
well as the earlier eras' probe tasks are fitted. Every update of the era looks until one spawns:
the update the alarm starts may come before the buffer holds enough of the new regime's tasks
(how soon depends on the machine's speed), and a look costs two scorings. The new component
starts as a copy of the best fit and trains on those tasks alone for the update's iterations, so
the routed training that follows has something to route to (an exact copy would tie with its
original on every task).

A mixture takes no distillation or EWC toward its parent: its old regimes are kept by routing
(each component trains only on its own tasks), and a pull toward the parent would drag a spawned
component back to the one it was copied from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tasks.base import TaskBatch
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


def is_mixture(learner) -> bool:
    """Whether an ``OnlineMetaLearner``'s champion is a mixture of meta-models."""
    return isinstance(learner.champion, MetaMixture)


def known_tasks(probes: dict[int, TaskBatch], era: int) -> TaskBatch | None:
    """The guard's probe tasks (one batch per era, as ``OnlineMetaLearner.probe_batches`` splits
    them) of the eras before ``era``, as one batch: tasks of the regimes the components already
    serve, never trained on."""
    batches = [b for e, b in sorted(probes.items()) if e < era]
    if not batches:
        return None
    return TaskBatch(*(torch.cat(parts) for parts in zip(*((b.support_x, b.support_y, b.query_x, b.query_y) for b in batches))))


def reshape_mixture(learner, candidate: MetaMixture, buffer: TaskReplayBuffer, train: list[str], known: TaskBatch | None,
                    era: int | None, iterations: int, meta_batch: int, gen: torch.Generator) -> MixtureChange:
    """Merge, then maybe spawn, on ``candidate`` (a copy of the champion) in place. ``learner`` is
    the ``OnlineMetaLearner`` that splits buffered tasks; ``known`` the earlier eras' probe tasks
    (:func:`known_tasks`). Updates of an era with no spawn yet compare the newest training tasks,
    which the alarm says are of the new regime, with them."""

    def sample(ids: list[str], n: int) -> list[str]:
        return [ids[i] for i in torch.randint(len(ids), (n,), generator=gen).tolist()]

    merged = 0
    if len(candidate.model.components) > 1 and train:
        batch = learner.task_batch(buffer, sample(train, SAMPLE))
        merged = candidate.merge_converged(batch) if batch is not None else 0
    recent = train[-2 * candidate.min_tasks:]
    spawned = False
    if era is not None and known is not None and era > int(candidate.model.checked_era) and len(recent) >= candidate.min_tasks:
        new_batch = learner.task_batch(buffer, recent)

        def fit(child) -> None:
            for _ in range(iterations):
                batch = learner.task_batch(buffer, sample(recent, meta_batch))
                if batch is not None:
                    child.meta_update(batch)

        if new_batch is not None:
            spawned = candidate.maybe_spawn(new_batch, known, fit)
        if spawned:  # one spawn an era; until then every update of the era looks again
            candidate.model.checked_era.fill_(era)
    return MixtureChange(len(candidate.model.components), spawned, merged)
