"""The worker's own evidence on a running rollout, beside the agents' reports: the canary and the
champion scored on the same fresh tasks as they complete in the stream (the tasks the drift
detector scores, split the same way for both), a paired loss difference per task. Its rate does
not depend on the canary's cohort or on whether agents report losses at all, so a version that is
worse on the stream's own data is found at any fleet size: the gate judged a candidate on 16
held-out tasks once; this goes on judging it on every task that arrives while it is rolled out.

Each loss is ``1 - reward`` as shadow candidates are scored (``OnlineMetaLearner.task_rewards``:
for regression the MSE relative to the task's spread, clipped; else 1 - accuracy), so one task's
amplitude does not dominate the difference. The evidence is held in memory: a restarted worker
starts it again (the agents' reports are on the log).

>>> import numpy as np
>>> e = HeldoutEvidence()
>>> e.start(1, 2)
>>> e.add(np.array([0.2, 0.3, 0.25]), np.array([0.5, 0.7, 0.6]))
>>> e.pairs, round(e.canary.mean - e.champion.mean, 3)
(3, 0.35)
>>> e.start(1, 2); e.pairs  # the same rollout: kept
3
>>> e.start(1, 3); e.pairs  # another canary: begun anew
0
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from streams.worker.rollout.sequential import Comparison, RunningStats, compare_paired, effect_scale

Scorer = Callable[[int], object]  # version -> an OnlineMetaLearner holding its weights (None: not remembered)


class HeldoutEvidence:
    """Paired losses of one rollout's canary and champion on the same fresh tasks."""

    def __init__(self) -> None:
        self.versions: tuple[int, int] | None = None  # (champion, canary) the evidence is about
        self.champion, self.canary, self.diffs = RunningStats(), RunningStats(), RunningStats()
        self._learners: dict[int, object] = {}  # version -> learner holding its weights (two at most)

    @property
    def pairs(self) -> int:
        return self.diffs.n

    def start(self, champion: int, canary: int) -> None:
        """Evidence about ``canary`` against ``champion``: kept when it is already about them, else begun anew."""
        if self.versions != (champion, canary):
            self.versions = (champion, canary)
            self.champion, self.canary, self.diffs = RunningStats(), RunningStats(), RunningStats()
            self._learners = {v: m for v, m in self._learners.items() if v in self.versions}

    def add(self, champion_losses: np.ndarray, canary_losses: np.ndarray) -> None:
        """One loss each per task, the same tasks in the same order."""
        ok = np.isfinite(champion_losses) & np.isfinite(canary_losses)
        self.champion.update_many(champion_losses[ok])
        self.canary.update_many(canary_losses[ok])
        self.diffs.update_many(canary_losses[ok] - champion_losses[ok])

    def observe(self, champion: int, canary: int, batch, learner_for: Scorer, steps: int | None = None) -> bool:
        """Score both versions on ``batch`` (a ``TaskBatch`` of fresh tasks); False when either
        version's weights are not at hand."""
        self.start(champion, canary)
        learners = []
        for v in (champion, canary):
            if v not in self._learners:
                learner = learner_for(v)
                if learner is None:
                    return False
                self._learners[v] = learner
            learners.append(self._learners[v])
        champion_losses, canary_losses = (1.0 - m.task_rewards(batch, steps) for m in learners)
        self.add(champion_losses, canary_losses)
        return True

    def comparison(self, alpha: float) -> Comparison:
        """``canary - champion`` mean loss over the paired tasks, always valid however often looked at."""
        return compare_paired(self.diffs, alpha, tau=effect_scale(self.champion, self.canary))

    def figures(self, alpha: float) -> dict[str, float]:
        c = self.comparison(alpha)
        return {"heldout_tasks": float(self.pairs), "heldout_estimate": c.estimate, "heldout_low": c.low,
                "heldout_high": c.high, "heldout_champion_loss": self.champion.mean, "heldout_canary_loss": self.canary.mean}
