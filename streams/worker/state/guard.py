"""The forgetting guard's part of a model's state: held-out probe tasks per era, every published
version's era scores and the version it was trained from, and the era each buffered task came from.

An era's best is taken over the *line* the worker learns on from: the version it holds and its
ancestors. After a rollback the worker reverts to the champion, and the versions rolled back
(or published after the champion and abandoned with them) are no longer its ancestors: their
scores must not be a bar the new line is held to. When they were (a single ``best`` over every
version ever published), a revert seven versions back left every era's best above what the
champion's line could reach, and the guard rejected every candidate for the rest of the run.

An era a mixture's update judged a regime an earlier era had (``fold``) is not checked on its
own: its regime is checked on the earlier era's probes. Each era of a recurring regime held its
own 64 probes to its own 2-point allowance, so a candidate that learned the regime better on one
era's probes looked as if it forgot it on another's (the same regime, sampled apart), and with
every return the checks multiplied: in the soak, past three eras nearly every candidate failed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from learners.online import EraScore, ProbeSet
from learners.online.guard import raise_best


@dataclass
class GuardState:
    probes: ProbeSet = field(default_factory=ProbeSet)
    scores: dict[int, dict[int, EraScore]] = field(default_factory=dict)  # version -> its newest era scores
    parents: dict[int, int | None] = field(default_factory=dict)  # version -> the version it was trained from
    task_era: dict[str, int] = field(default_factory=dict)  # era of each buffered task (pruned at each update)
    recognised_era: int = -1  # the last era a mixture's update judged a regime it knew (its event sent)
    folded: dict[int, int] = field(default_factory=dict)  # era -> the earlier era whose regime it is (a mixture's judgement)

    def fold(self, era: int, like: int) -> bool:
        """Era ``era``'s tasks are era ``like``'s regime: check them there (on the era ``like`` itself
        folded into, if it was). False when ``era`` was folded already, or ``like`` is not earlier.

        >>> g = GuardState()
        >>> g.fold(2, 0), g.fold(4, 2), g.fold(4, 1), g.fold(1, 3), g.folded
        (True, True, False, False, {2: 0, 4: 0})
        """
        if era in self.folded or like >= era:
            return False
        self.folded[era] = self.folded.get(like, like)
        return True

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

    def record(self, version: int, scores: dict[int, EraScore], parent: int | None = None) -> None:
        """A version's era scores (the newest measurement of an era wins: probes of the era being
        learned still grow) and, the first time it is recorded with one, its parent."""
        # the three scores only: the per-probe errors a fresh measurement carries are for comparing a
        # candidate with its parent in the update, and kept for every version they would grow the state
        self.scores.setdefault(version, {}).update({e: EraScore(s.points, s.select, s.held) for e, s in scores.items()})
        if parent is not None:
            self.parents[version] = parent
        else:
            self.parents.setdefault(version, None)

    def line(self, version: int) -> list[int]:
        """``version`` and its recorded ancestors, newest first (a cycle, from a corrupt log, ends it).

        >>> g = GuardState()
        >>> for v, p in [(1, None), (2, 1), (3, 2), (4, 2)]: g.record(v, {}, p)
        >>> g.line(4), g.line(3)
        ([4, 2, 1], [3, 2, 1])
        """
        out: list[int] = []
        at: int | None = version
        while at is not None and at in self.scores and at not in out:
            out.append(at)
            at = self.parents.get(at)
        return out

    def best_for(self, version: int) -> dict[int, EraScore]:
        """Each era's best (highest ``select``) among ``version`` and its ancestors.

        >>> g = GuardState()
        >>> g.record(1, {0: EraScore.same(60.0)})
        >>> g.record(2, {0: EraScore.same(75.0)}, parent=1)  # rolled back later
        >>> g.record(3, {0: EraScore.same(62.0)}, parent=1)  # trained from the champion v1
        >>> g.best_for(3)[0].points, g.best_for(2)[0].points
        (62.0, 75.0)
        """
        best: dict[int, EraScore] = {}
        for v in reversed(self.line(version)):
            best = raise_best(best, self.scores[v])
        return best
