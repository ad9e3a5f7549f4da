"""What an update job holds, built from a model's state at the moment it starts: the champion (or
the shadow a job trains or challenges with), a snapshot of the buffer, the plan a trigger asks for,
the forgetting guard's inputs and a search's space."""

from __future__ import annotations

import copy

from learners.online import GuardPlan, UpdatePlan
from learners.online.heldout import era_heldout
from learners.search.spaces import search_space

from streams.records.wire import Cause
from streams.settings import Settings
from streams.worker.state import ModelState
from streams.worker.learning.process import SearchRequest, ShadowJob, UpdateJob, Work


ROUTINE = (Cause.NEW_TASKS, Cause.SCHEDULE)


def precedence(trigger: Cause, work: Work) -> int:
    """Which request waits when an update is running and one is already waiting: a drift update
    goes first, then what a remedy, search or challenge asks for, then a routine update (new tasks,
    the schedule) or a shadow's training. A request of higher precedence takes the waiting one's
    place (a routine update's tasks are learned by whatever runs next); of lower, it is dropped.

    >>> precedence(Cause.DISTIL, Work.DISTIL) > precedence(Cause.NEW_TASKS, Work.UPDATE)
    True
    """
    if trigger is Cause.DRIFT:
        return 3
    if work in (Work.UPDATE, Work.SHADOW) and trigger in ROUTINE:
        return 1
    return 2


def build_job(state: ModelState, s: Settings, trigger: Cause, number: int, work: Work = Work.UPDATE) -> UpdateJob:
    """What the update process needs: the champion, a snapshot of the buffer, the plan and the guard."""
    snapshot = state.buffer.snapshot()
    own = s.update_for(state.learner.config)  # the model's own update settings over the worker's
    old = state.guard.old_tasks(snapshot.task_ids(), state.drift.era)
    heldout = era_heldout(own.heldout_tasks, snapshot.num_tasks - len(old))  # the gate judges on the current era's tasks
    if trigger is Cause.DRIFT:
        plan = UpdatePlan(own.drift_iterations, own.meta_batch, heldout, own.drift_recent, own.drift_share)
    else:
        plan = UpdatePlan(own.iterations, own.meta_batch, heldout, own.recent, own.share)
    guard = None
    own_share = state.learner.config.get("continual", {}).get("recent_share")
    if own_share is not None and trigger is not Cause.DRIFT:  # a searched config's replay share
        plan = UpdatePlan(plan.iterations, plan.meta_batch, plan.heldout, plan.recent, float(own_share))
    if s.guard.enabled:
        terms = s.guard_for(state.learner.config)
        # copies of what ingest goes on changing: the job is pickled for the update process by a
        # feeder thread some time after it is submitted, and must be the job the recipe describes
        guard = GuardPlan(copy.deepcopy(state.guard.probes), state.guard.best_for(state.weights_version), terms.max_drop, terms.distill, terms.ewc,
                          old, state.drift.era, alpha=terms.alpha,
                          folded=tuple(sorted(state.guard.folded)))
    shadow = None
    if work in (Work.SHADOW, Work.CHALLENGE):
        pool = state.shadows
        picked = pool.shadows.get(state.challenging or "") if work is Work.CHALLENGE else pool.pick()
        if picked is None:
            raise LookupError(f"no shadow to {'challenge with' if work is Work.CHALLENGE else 'train'}")
        shadow = ShadowJob(picked.name, copy.deepcopy(picked.learner.config), picked.learner.weights_bytes())
        if work is Work.SHADOW:
            guard = None  # a shadow trains plainly; the guard judges it when it challenges
    request = None
    if work is Work.SEARCH:
        space = search_space("stream", state.learner.config["algo"]).to_dict()
        if not s.guard.enabled:  # without the guard there is no distillation or EWC to tune
            space = {k: v for k, v in space.items() if k not in ("ewc", "distill")}
        request = SearchRequest(space, s.search.trials, s.search.iterations)
    return UpdateJob(number, copy.deepcopy(state.learner.config), state.learner.weights_bytes(), snapshot, plan, guard, request,
                     s.diagnosis.distil_factor if work is Work.DISTIL else None, shadow, work)
