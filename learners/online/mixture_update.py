"""What an update does to a mixture of meta-models before it trains (``learners/transfer/mixture.py``):
merge components that have converged, and, once per era of the forgetting guard (that is, once
per drift alarm), judge the newest tasks against every earlier era's probe tasks: a regime that
came back is routed to the component that learned it (nothing spawns, nothing is relearned); a
regime no era's component fits spawns a component. Every update of the era looks until it is
decided: the update the alarm starts may come before the buffer holds enough of the new regime's
tasks (how soon depends on the machine's speed): tasks that still fit the component of the era
the drift left decide nothing. The new component starts as a copy of the best fit and trains on
those tasks alone for the update's iterations, so the routed training that follows has something
to route to (an exact copy would tie with its original on every task).

A mixture takes no distillation or EWC toward its parent: its old regimes are kept by routing
(each component trains only on its own tasks), and a pull toward the parent would drag a spawned
component back to the one it was copied from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tasks.base import TaskBatch
from ..transfer.mixture import MetaMixture
from ..transfer.regimes import RegimeJudgement, Verdict
from .replay import TaskReplayBuffer

SAMPLE = 64  # tasks each check looks at
JUDGED_ERAS = 32  # a new era is judged against this many earlier eras at most (the newest): the cost stays bounded


@dataclass(frozen=True)
class MixtureChange:
    """What one update did to the mixture's components (reported with the version)."""

    components: int
    spawned: bool = False
    merged: int = 0
    judgement: RegimeJudgement | None = None  # this update's verdict on the era's tasks (None: not judged)

    @property
    def recognised(self) -> bool:
        """The era's tasks are a regime an earlier era had: its component took them over."""
        return self.judgement is not None and self.judgement.verdict is Verdict.KNOWN

    def as_dict(self) -> dict[str, int | bool | float]:
        """Figures (numbers only): components, spawned, merged; when judged, the era and component
        the tasks fit best and the loss ratio; when a component was retired, which, and whether it
        was the least used (else merged into its nearest)."""
        out: dict[str, int | bool | float] = {"components": self.components, "spawned": self.spawned, "merged": self.merged}
        j = self.judgement
        if j is not None and j.verdict is not Verdict.UNDECIDED:
            out.update(recognised=j.verdict is Verdict.KNOWN, component=j.component, like_era=j.era, fit_ratio=round(j.ratio, 4))
        if j is not None and j.retired >= 0:
            out.update(retired=j.retired, retired_least_used=j.retirement is not None and j.retirement.value == "least_used",
                       given_up_eras=len(j.given_up))
        return out


def is_mixture(learner) -> bool:
    """Whether an ``OnlineMetaLearner``'s champion is a mixture of meta-models."""
    return isinstance(learner.champion, MetaMixture)


def known_tasks(probes: dict[int, TaskBatch], era: int) -> dict[int, TaskBatch] | None:
    """The guard's probe tasks (one batch per era, as ``OnlineMetaLearner.probe_batches`` splits
    them) of the eras before ``era``: tasks of the regimes the components already serve, never
    trained on; the newest ``JUDGED_ERAS`` of them. ``None`` when there is no earlier era."""
    earlier = sorted(e for e in probes if e < era)[-JUDGED_ERAS:]
    return {e: probes[e] for e in earlier} or None


def reshape_mixture(learner, candidate: MetaMixture, buffer: TaskReplayBuffer, train: list[str], known: dict[int, TaskBatch] | None,
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
    judgement = None
    if era is not None and known is not None and era > int(candidate.model.checked_era) and len(recent) >= candidate.min_tasks:
        # split with a generator of its own: a look that spawns nothing leaves the update's draws as
        # they would be without it (a one-component mixture trains as a plain model, byte for byte)
        new_batch = learner.task_batch(buffer, recent, torch.Generator().manual_seed(era))

        def fit(child) -> None:
            for _ in range(iterations):
                batch = learner.task_batch(buffer, sample(recent, meta_batch))
                if batch is not None:
                    child.meta_update(batch)

        if new_batch is not None:
            judgement = candidate.answer(new_batch, known, fit, left=era - 1)
        if judgement is not None and judgement.verdict is not Verdict.UNDECIDED:  # decided once an era
            candidate.model.checked_era.fill_(era)
    spawned = judgement is not None and judgement.verdict is Verdict.NEW
    return MixtureChange(len(candidate.model.components), spawned, merged, judgement)
