"""The forgetting guard's part of a model's state: held-out probe tasks per era, the best score
each era had under a published version, and the era each buffered task came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from learners.online import EraScore, ProbeSet
from learners.online.guard import raise_best


@dataclass
class GuardState:
    probes: ProbeSet = field(default_factory=ProbeSet)
    best: dict[int, EraScore] = field(default_factory=dict)  # the scores of each era's best published version
    task_era: dict[str, int] = field(default_factory=dict)  # era of each buffered task (pruned at each update)
    recognised_era: int = -1  # the last era a mixture's update judged a regime it knew (its event sent)

    def note_task(self, task_id: str, era: int) -> None:
        self.task_era.setdefault(task_id, era)

    def old_tasks(self, task_ids: list[str], era: int) -> list[str]:
        """Tasks of eras before ``era`` among ``task_ids``; forgets the era of tasks no longer listed.

        >>> g = GuardState()
        >>> g.note_task("a", 0); g.note_task("b", 1)
        >>> g.old_tasks(["a", "b"], era=1), sorted(g.task_era)
        (['a'], ['a', 'b'])
        """
        self.task_era = {t: self.task_era.get(t, era) for t in task_ids}
        return [t for t, e in self.task_era.items() if e < era]

    def record_best(self, scores: dict[int, EraScore]) -> None:
        """Scores of a published version: where it is an era's best (on the probes that select it)."""
        self.best = raise_best(self.best, scores)
