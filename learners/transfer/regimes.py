"""A mixture of meta-models' regimes (``mixture.py``): spawning, recurrence and the budget. A new era's tasks (the stretch after a drift alarm) are judged
against the earlier eras: take the component that fits them best, and the eras it serves (their
probe tasks fit it best). When it fits the new tasks within ``spawn_ratio`` times as well as it
fits those eras' own tasks (the median over them; losses relative to each task's target variance
for regression, so a task's amplitude does not weigh, and the median over the tasks, so a few
nearly flat tasks do not either), that is a regime it serves coming back: it takes the new tasks
over, and nothing spawns or relearns (:class:`RegimeJudgement`). A regime that even its best
component fits more than that much worse than the rest of what it serves spawns a component of its
own, even if it was seen before (one component that serves two regimes, one of them poorly, is
split). The new component is copied from the best fit and fitted to those tasks first (an exact
copy would tie with its original on every task and never be routed to); each update then trains
every component only on the tasks routed to it, so an old regime's component is not overwritten.
(Two components that fit each other's tasks within ``merge_tolerance`` merge, the younger going:
``MetaMixture.merge_converged``.) The components are bounded: at ``max_components`` a
spawn first makes room, merging the two that fit each other's eras most nearly, or retiring the
least used (a decayed count of the training tasks routed to each).

Each function takes the :class:`~learners.transfer.mixture.MetaMixture` it judges or reshapes
(typed as the ``MetaLearner`` it is: this module does not import the mixture's, which imports it);
the mixture's methods of the same names call them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

import torch

from ..base import MetaLearner
from ..tasks.base import TaskBatch

class Verdict(str, Enum):
    """What the tasks of a new era are, judged against every earlier era."""

    UNDECIDED = "undecided"  # too few new tasks, no earlier era, or they still fit the era the drift left
    KNOWN = "known"  # a regime that came back: routed to the component that learned it
    NEW = "new"  # no component fits them: a component spawned for them


class Retirement(str, Enum):
    """Why a component went to make room for a new one."""

    MERGED = "merged"  # it and another fit each other's eras most nearly
    LEAST_USED = "least_used"  # no two were close: the one trained on fewest tasks lately


@dataclass(frozen=True)
class RegimeJudgement:
    """The verdict on a new era's tasks, with its figures: ``era`` and ``component`` the earlier era
    they fit best and its best component, ``ratio`` their loss under that component over the era's
    own (1: as well as the era itself); for a spawn, the new ``component``'s index; ``retired`` the
    component that made room (-1: none), why, and the eras only it served (the guard gives them up)."""

    verdict: Verdict
    era: int = -1
    component: int = -1
    ratio: float = float("nan")
    retired: int = -1
    retirement: Retirement | None = None
    given_up: tuple[int, ...] = field(default_factory=tuple)


def era_fit(mix: MetaLearner, eras: dict[int, TaskBatch]) -> tuple[dict[int, int], dict[int, float]]:
    """Each era's best component and that component's mean relative loss on the era's tasks."""
    best, own = {}, {}
    for e, b in sorted(eras.items()):
        per = mix.query_losses(b, relative=True).median(1).values
        best[e] = int(per.argmin())
        own[e] = float(per.min())
    return best, own

def judge(mix: MetaLearner, recent: TaskBatch, eras: dict[int, TaskBatch], left: int | None = None) -> RegimeJudgement:
    """Whether ``recent`` (a new era's tasks) is a regime one of ``eras`` (earlier eras' probe
    tasks) already had: the component that fits them best, compared with how it fits the eras
    it serves (the median of their own losses: a component that fits an era's tasks poorly
    does not serve that regime well, so a regime only fitted that poorly spawns a component of
    its own), within ``spawn_ratio``; ``era`` is the served era they are most like. ``left``:
    the era the drift left; its component fitting them best says the new regime's tasks have
    not come yet (``UNDECIDED``), not that it is known."""
    if not eras:
        return RegimeJudgement(Verdict.UNDECIDED)
    best, own = era_fit(mix, eras)
    new = mix.query_losses(recent, relative=True).median(1).values
    home = int(new.argmin())
    served = [e for e in best if best[e] == home] or list(best)  # a component that serves no era: every era's own
    reference = float(torch.tensor([own[e] for e in served]).median())
    ratio = float(new[home]) / max(reference, 1e-6)
    era = min(served, key=lambda e: abs(math.log(max(float(new[home]), 1e-6) / max(own[e], 1e-6))))
    if not ratio <= mix.spawn_ratio:
        return RegimeJudgement(Verdict.NEW, era, home, ratio)
    if left is not None and best.get(left) == home:
        return RegimeJudgement(Verdict.UNDECIDED, era, home, ratio)
    return RegimeJudgement(Verdict.KNOWN, era, home, ratio)

def answer(mix: MetaLearner, recent: TaskBatch, eras: dict[int, TaskBatch], fit: Callable[[MetaLearner], None] | None = None,
           left: int | None = None) -> RegimeJudgement:
    """Judge ``recent`` (:meth:`judge`); a new regime spawns a component copied from the best
    fit to them (making room first at ``max_components``) that ``fit`` then trains on them
    (default: one meta-update on them)."""
    verdict = judge(mix, recent, eras, left)
    if verdict.verdict is not Verdict.NEW:
        return verdict
    retired, why, given_up = -1, None, ()
    if len(mix.model.components) >= mix.max_components:
        retired, why, given_up = make_room(mix, eras)
    new_losses = mix.query_losses(recent)
    source = int(new_losses.mean(1).argmin())
    k = len(mix.model.components)
    mix.model.components.append(copy.deepcopy(mix.model.components[source]))
    mix.model.resize(k + 1, mix.model.input_mean.shape[1])
    child = mix.components[k]
    child.optimizer = type(child.optimizer)(child.model.parameters(), **child.optimizer.defaults)
    child.model.train()
    (fit or (lambda c: c.meta_update(recent)))(child)
    child.model.eval()
    if mix.kind == "classification":
        mix.model.input_var[k] = 0  # take the new regime's statistics as they are
        mix.track_inputs(k, recent)
    return RegimeJudgement(Verdict.NEW, verdict.era, k, verdict.ratio, retired, why, given_up)

def make_room(mix: MetaLearner, eras: dict[int, TaskBatch]) -> tuple[int, Retirement, tuple[int, ...]]:
    """Remove one component: the younger of the two that fit each other's eras most nearly (when
    within ``spawn_ratio``), else the least used. Returns its index, why, and the eras whose best
    component it was that no other fits within ``spawn_ratio`` (given up)."""
    per = {e: mix.query_losses(b, relative=True).median(1).values for e, b in eras.items()}
    count = len(mix.model.components)
    served = {k: [e for e, p in per.items() if int(p.argmin()) == k] for k in range(count)}

    def cost(i: int, j: int) -> float:  # how much worse each fits the other's eras, the worse way round
        worst = 1.0
        for a, b in ((i, j), (j, i)):
            for e in served[b]:
                worst = max(worst, float(per[e][a]) / max(float(per[e][b]), 1e-6))
        return worst

    pairs = sorted(((cost(i, j), j) for j in range(1, count) for i in range(j)))
    if pairs and pairs[0][0] <= mix.spawn_ratio:
        gone, why = pairs[0][1], Retirement.MERGED
    else:
        gone, why = int(mix.model.uses[:count].argmin()) if len(mix.model.uses) == count else count - 1, Retirement.LEAST_USED
    rest = [k for k in range(count) if k != gone]
    given_up = tuple(e for e in served[gone]
                     if not min(float(per[e][k]) for k in rest) <= mix.spawn_ratio * float(per[e][gone]))
    mix.model.keep(rest)
    return gone, why, given_up
