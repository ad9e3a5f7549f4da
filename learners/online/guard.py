"""The forgetting guard of the stream workers: a small probe set of tasks per *era* (the stretch of
the stream between two drift alarms), each era's best published version, and the check that a
candidate keeps every era within ``max_drop`` points of that best (:class:`EraScore` says on
which probes each is measured).

Scores are in points out of 100 after the usual few-shot adaptation: accuracy for classifiers, and
for regression the variance explained over the era's probe tasks (100 * (1 - sum of the tasks' MSE
/ sum of their targets' variance), an R^2 in percent), so "5 points" means the same for both. Each probe task is split the same way
every time (``learners/tasks/split.py`` without a random generator): scores of two versions differ
only by their weights.

>>> import numpy as np
>>> probes = ProbeSet(per_era=2, every=2)
>>> task = np.zeros((4, 1), "f4"), np.ones((4, 1), "f4")
>>> [probes.offer(0, *task) for _ in range(6)]
[True, False, True, False, False, False]
>>> check_forgetting({0: 80.0, 1: 60.0}, {0: 84.0, 1: 70.0}, max_drop=5.0)
{1: 10.0}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import t as student_t

from ..base import MetaLearner
from ..tasks.base import TaskBatch


@dataclass
class ProbeSet:
    """Up to ``per_era`` tasks of each era, copied and held out: a probe task is never trained on
    (the caller keeps it out of the replay buffer), so its score measures what a version knows of
    the era, not what it memorised."""

    per_era: int = 64
    every: int = 4  # one offered task in this many becomes a probe: training is never starved of tasks
    tasks: dict[int, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    offered: dict[int, int] = field(default_factory=dict)

    def offer(self, era: int, x: np.ndarray, y: np.ndarray, task_id: str | None = None) -> bool:
        """Keep this task as a probe of ``era`` if it is its turn and the era has room; True if kept."""
        kept = self.tasks.setdefault(era, [])
        turn = self.offered.get(era, 0)
        self.offered[era] = turn + 1
        if len(kept) >= self.per_era or turn % self.every:
            return False
        kept.append((np.array(x, "f4"), np.array(y, "f4")))
        if task_id is not None:
            self.ids.add(task_id)
        return True


def _task_errors(learner: MetaLearner, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per task, after adaptation: its error and the scale the error is out of (regression: MSE
    and the targets' variance; classification: wrong answers and answers). A score over any set
    of the tasks is ``100 * (1 - sum(error) / sum(scale))``."""
    adapted = learner.adapt_tasks(batch.support_x, batch.support_y)
    with torch.no_grad():
        out = learner.predict_tasks(adapted, batch.query_x)
    if learner.kind == "regression":  # variance explained over the era's tasks, pooled: a task's share
        return ((out - batch.query_y) ** 2).flatten(1).mean(1), batch.target_variance()  # grows with its spread
    wrong = (out.argmax(-1) != batch.query_y).flatten(1).float()
    return wrong.sum(1), torch.full((wrong.shape[0],), float(wrong.shape[1]))


def _points(error: torch.Tensor, scale: torch.Tensor) -> float:
    return float(100 * (1 - error.sum() / scale.sum().clamp(min=1e-6)))


def score_points(learner: MetaLearner, batch: TaskBatch) -> float:
    """Mean post-adaptation score of the tasks in ``batch``, in points out of 100."""
    return _points(*_task_errors(learner, batch))


@dataclass(frozen=True)
class EraScore:
    """A version's score on an era's probes: ``points`` on all of them (what events show) and on
    two fixed halves of them, ``select`` (the even-numbered probes) and ``held`` (the odd ones).
    An era's best version is the one with the highest ``select``; the guard compares ``held``
    scores, so the best it holds a candidate to was not chosen on the tasks it is measured on.
    A best that is the maximum over every version's score on the same probes sits above what any
    version truly scores (the winner's curse): with enough versions no candidate came within
    ``max_drop`` of it and learning stopped (the soak after its restarts, the distilled student).

    ``errors`` and ``scales``: each probe's error and the scale it is out of, in probe order, when
    the score was measured here (not read back from a record): two versions scored on the same
    probes are compared task by task (:func:`drop_noise`)."""

    points: float
    select: float
    held: float
    errors: tuple[float, ...] = field(default=(), repr=False, compare=False)
    scales: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def same(cls, points: float) -> "EraScore":
        """A score known only on all probes (a version recorded before the halves were)."""
        return cls(points, points, points)


def era_score(learner: MetaLearner, batch: TaskBatch) -> EraScore:
    error, scale = _task_errors(learner, batch)
    tasks = dict(errors=tuple(error.double().tolist()), scales=tuple(scale.double().tolist()))
    if len(error) < 2:  # one probe: no halves to split
        return EraScore(*[_points(error, scale)] * 3, **tasks)
    return EraScore(_points(error, scale), _points(error[0::2], scale[0::2]), _points(error[1::2], scale[1::2]), **tasks)


def drop_noise(candidate: EraScore, reference: EraScore, level: float, half: slice = slice(None)) -> float:
    """How far beyond ``max_drop`` the candidate's drop below ``reference`` on the same probes must
    go to count at one-sided ``level``, in points (``half``: the held ones, ``slice(1, None, 2)``):
    Student's t quantile times the standard error of the task-by-task differences of their
    errors, as the sampling error of a sum. 0 when ``level`` is 0, when either was not measured
    task by task, or fewer than two probes pair up: the fixed allowance alone then.

    >>> a = EraScore(0.0, 0.0, 0.0, errors=(1.0, 2.0, 3.0, 4.0), scales=(10.0,) * 4)
    >>> b = EraScore(0.0, 0.0, 0.0, errors=(2.0, 2.0, 5.0, 4.0), scales=(10.0,) * 4)
    >>> round(drop_noise(b, a, 0.05), 2), drop_noise(b, EraScore.same(0.0), 0.05), drop_noise(b, a, 0.0)
    (11.27, 0.0, 0.0)
    """
    c, r, s = candidate.errors[half], reference.errors[half], reference.scales[half]
    if level <= 0 or len(c) != len(r) or len(c) < 2:
        return 0.0
    diff = np.subtract(c, r)
    noise = float(100 * np.sqrt(len(diff)) * diff.std(ddof=1) / max(float(np.sum(s)), 1e-6))
    noise *= float(student_t.ppf(1 - min(level, 0.5), len(diff) - 1))
    return noise if np.isfinite(noise) else 0.0  # a diverged output must not widen the allowance: fail closed


def era_scores(learner: MetaLearner, batches: dict[int, TaskBatch]) -> dict[int, EraScore]:
    return {era: era_score(learner, b) for era, b in batches.items()}


def raise_best(best: dict[int, EraScore], scores: dict[int, EraScore]) -> dict[int, EraScore]:
    """Each era's best after a version scored ``scores`` was published: the higher ``select``.

    >>> raise_best({0: EraScore(60.0, 62.0, 58.0)}, {0: EraScore(61.0, 61.0, 61.0), 1: EraScore.same(40.0)})
    {0: EraScore(points=60.0, select=62.0, held=58.0), 1: EraScore(points=40.0, select=40.0, held=40.0)}
    """
    out = dict(best)
    for era, s in scores.items():
        if era not in out or s.select > out[era].select:
            out[era] = s
    return out


def forgotten(candidate: dict[int, EraScore], best: dict[int, EraScore], champion: dict[int, EraScore], current_era: int,
              max_drop: float, ignore: tuple[int, ...] = (), alpha: float = 0.0,
              allowed: dict[int, "Allowance"] | None = None) -> dict[int, float]:
    """Eras the candidate forgot, ``{era: drop}`` (the larger drop where both checks fail): more than
    ``max_drop`` below its parent, the champion, on all of the era's probes (no choice among versions
    inflates a parent's score, so every probe counts); and, an old era, more than ``max_drop`` below
    the era's best version on the ``held`` half (the best was picked on the other). The era being
    learned is held to its parent only: its probe set may still be growing, so a best from fewer
    probes is not comparable; and a drift the detector has not yet called (the new regime still
    counted in this era) must not wipe out what the era knew. ``ignore``: eras not checked (a
    mixture gave them up, and says so).

    ``alpha`` > 0: a drop counts only when it exceeds ``max_drop`` by more than the probes' noise
    (:func:`drop_noise` of the candidate's task-by-task difference from its parent, each of the
    checks at ``alpha`` over their number: Bonferroni; on the held half for the best, whose own
    tasks' errors are not kept: the parent's difference stands in for a version's). With a fixed allowance, six eras of
    eight probes whose tasks' scores spread over tens of points failed nearly every candidate on
    one era or another (the soak's fifth incarnation: 54 rejections, half of them under 5 points);
    but where a few probes leave the noise wide, the test lets real drops through (at 0.05, a
    worker of ``tests/integration/test_forgetting.py`` published a version 5.2 points below an
    earlier one on fresh tasks): the workers keep ``alpha`` 0, the promise, unless told.

    >>> best = {0: EraScore(70.0, 72.0, 68.0)}
    >>> champion = {0: EraScore(67.0, 67.0, 67.0), 1: EraScore.same(45.0)}
    >>> forgotten({0: EraScore(66.0, 67.0, 65.0), 1: EraScore.same(44.0)}, best, champion, current_era=1, max_drop=2.0)
    {0: 3.0}
    >>> forgotten({0: EraScore(66.0, 67.0, 65.0), 1: EraScore.same(42.0)}, best, champion, 1, 2.0, ignore=(0,))
    {1: 3.0}
    """
    drops: dict[int, float] = {}
    if allowed is None:  # ``allowed``: the :func:`allowances` of these arguments, when the caller has them
        allowed = allowances(candidate, best, champion, current_era, max_drop, ignore, alpha)
    for era, allow in allowed.items():
        score, parent, top = candidate[era], champion.get(era), best.get(era) if era < current_era else None
        found = [_drop(score.points, parent.points, allow.parent) if parent is not None else None,
                 _drop(score.held, top.held, allow.best) if top is not None else None]
        found = [d for d in found if d is not None]
        if found:
            drops[era] = max(found)
    return dict(sorted(drops.items()))


@dataclass(frozen=True)
class Allowance:
    """Points an era may lose before the guard calls it forgotten: against the parent on all of
    the era's probes, and against the era's best on the held half (``max_drop`` plus the noise)."""

    parent: float
    best: float


def allowances(candidate: dict[int, EraScore], best: dict[int, EraScore], champion: dict[int, EraScore], current_era: int,
               max_drop: float, ignore: tuple[int, ...] = (), alpha: float = 0.0) -> dict[int, Allowance]:
    """Each checked era's :class:`Allowance` (see :func:`forgotten`): a version's record carries
    them, so an audit can check the guard's promise from the records alone.

    >>> allowances({0: EraScore.same(50.0)}, {}, {}, current_era=1, max_drop=2.0)
    {0: Allowance(parent=2.0, best=2.0)}
    """
    checked = {e: s for e, s in candidate.items() if e not in ignore}
    tests = sum((e in champion) + (e < current_era and e in best) for e in checked)
    level = alpha / max(tests, 1)
    out = {}
    for era, score in checked.items():
        parent = champion.get(era)
        if parent is None:
            out[era] = Allowance(max_drop, max_drop)
        else:
            out[era] = Allowance(max_drop + drop_noise(score, parent, level),
                                 max_drop + drop_noise(score, parent, level, slice(1, None, 2)))
    return out


def _drop(score: float, reference: float, allowance: float) -> float | None:
    """``reference - score`` when it exceeds ``allowance`` (a score that is not a number: inf)."""
    if score != score:
        return float("inf")
    return round(reference - score, 6) if reference - score > allowance else None


def check_forgetting(candidate: dict[int, float], best: dict[int, float], max_drop: float) -> dict[int, float]:
    """Eras whose score fell more than ``max_drop`` points below their best: ``{era: drop}``. A
    score that is not a number (the candidate's outputs diverged) counts as an infinite drop: a
    comparison with NaN is false, and the guard must fail closed, not open.

    >>> check_forgetting({0: float("nan")}, {0: 60.0}, max_drop=3.0)
    {0: inf}
    """
    return {era: (round(best[era] - s, 6) if s == s else float("inf")) for era, s in candidate.items()
            if era in best and (s != s or best[era] - s > max_drop)}
