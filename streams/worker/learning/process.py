"""The update process: a meta-update runs in a separate process, so the worker's event loop never
shares torch (whose ``torch.func`` transforms are not thread-safe) with a long update, and the
update gets a core of its own. What goes in is an :class:`UpdateJob`, what comes out an
:class:`UpdateResult`; the parent pre-empts a running job through a shared integer (the number of
the job to abandon), which the job polls every iteration.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from learners.online import GuardedProposal, GuardPlan, OnlineMetaLearner, TaskReplayBuffer, UpdatePlan, propose_guarded

_abort: Any = None  # shared integer: the number of the job to abandon (set per update process)


class Work(Enum):
    """What an update process job does: a plain update, a search whose winner is the candidate, or
    a smaller student distilled from the champion."""

    UPDATE = "update"
    SEARCH = "search"
    DISTIL = "distil"
    SHADOW = "shadow"  # train a shadow candidate (nothing is published)
    CHALLENGE = "challenge"  # a shadow that beat the champion, trained once more and judged as a candidate


@dataclass(frozen=True)
class SearchRequest:
    """Run a small study first: ``trials`` trials over ``space`` (a search space as data)."""

    space: dict[str, dict]
    trials: int
    trial_iterations: int


@dataclass(frozen=True)
class ShadowJob:
    """The shadow candidate a job trains (or whose challenge it runs): its name, config and weights."""

    name: str
    config: dict[str, Any]
    weights: bytes


@dataclass
class UpdateJob:
    number: int  # also the seed of the update's random draws
    config: dict[str, Any]
    weights: bytes  # the champion's, as safetensors
    buffer: TaskReplayBuffer  # a snapshot
    plan: UpdatePlan
    guard: GuardPlan | None
    search: SearchRequest | None = None
    distil_factor: float | None = None  # a distillation job: the student's width relative to the champion's
    shadow: ShadowJob | None = None  # a shadow's update or challenge (config and weights above stay the champion's)
    work: Work = Work.UPDATE  # what the job does; the field it needs (search, distil_factor, shadow) is set with it

    def __post_init__(self) -> None:
        needs = {Work.SEARCH: self.search, Work.DISTIL: self.distil_factor, Work.SHADOW: self.shadow, Work.CHALLENGE: self.shadow}
        if self.work in needs and needs[self.work] is None:
            raise ValueError(f"a {self.work.value} job needs its {'shadow' if self.work in (Work.SHADOW, Work.CHALLENGE) else self.work.value}")


class Outcome(Enum):
    PROPOSED = "proposed"
    ABORTED = "aborted"  # pre-empted by the parent
    TOO_FEW_TASKS = "too_few_tasks"  # not enough buffered tasks to train and hold out


@dataclass
class UpdateResult:
    outcome: Outcome
    proposal: GuardedProposal | None = None
    config: dict[str, Any] | None = None  # a search's winning config (None: the champion's config stays)
    params: dict[str, Any] | None = None  # what the search chose
    search_figures: dict[str, float] | None = None
    shadow_weights: bytes | None = None  # a shadow update's result (kept only when it did not get worse)


def update_executor(processes: int, abort: Any = None) -> ProcessPoolExecutor:
    """Update processes (spawned: torch and fork do not mix) whose results depend on their inputs
    alone: MKL's conditional numerical reproducibility is set to strict, so a GEMM gives the same
    bits whatever the alignment of the memory it is handed (without it, a job re-run by an audit
    in another process differed in the last bits now and then)."""
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # read by MKL when a spawned process first calls it
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=init_update_process,
                               initargs=(abort, os.getpid()))


def init_update_process(abort: Any = None, parent: int | None = None) -> None:
    """Initializer of an update process: Ctrl-C is for the parent, which shuts the pool down; the
    shared ``abort`` value lets the parent pre-empt a running update (e.g. when a drift arrives);
    and the process ends when its parent does, however that ends (SIGKILL included)."""
    global _abort
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _abort = abort
    die_with_parent(parent)


def die_with_parent(parent: int | None = None, every_s: float = 0.5) -> threading.Thread:
    """Exit this process as soon as its parent is gone (it is then re-parented, so ``getppid``
    changes). A SIGKILLed worker cannot shut its pool down, and an orphaned update process holds
    hundreds of MB (and keeps multiprocessing's resource tracker alive) forever. Polling works on
    every POSIX system, unlike Linux's ``PR_SET_PDEATHSIG``, which also fires when merely the
    thread that spawned the process ends. Pass the parent's pid as the parent saw it: one that
    died while this process was still starting is then noticed too."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="die-with-parent", daemon=True)
    thread.start()
    return thread


def run_update(job: UpdateJob) -> UpdateResult:
    """Rebuild the champion from its weights and run one guarded update of it."""
    import torch

    torch.set_num_threads(1)
    # whatever draws from the global generators (dropout, say) draws the same in any process: an
    # audit re-runs this job in another process and must get the same bytes
    torch.manual_seed(job.number)
    np.random.seed(job.number % 2**32)
    random.seed(job.number)
    learner = OnlineMetaLearner(job.config, seed=job.number)
    learner.load_weights(job.weights)
    abort = _abort

    def stopped() -> bool:
        return abort is not None and abort.value == job.number

    stop = stopped if abort is not None else None
    if job.work in (Work.SHADOW, Work.CHALLENGE):
        return _run_shadow(job, stop, stopped)
    if job.work is Work.DISTIL:
        from learners.online.distilled import distil_student

        made = distil_student(job.config, job.weights, job.buffer, job.plan, job.guard, job.number, job.distil_factor,
                              should_stop=stop)
        if stopped():
            return UpdateResult(Outcome.ABORTED)
        if made is None:
            return UpdateResult(Outcome.TOO_FEW_TASKS)
        return UpdateResult(Outcome.PROPOSED, made[0], made[1], {"width_factor": job.distil_factor}, None)
    if job.work is Work.SEARCH:
        from learners.online.searched import search_guarded
        from learners.search.space import SearchSpace

        found = search_guarded(job.config, job.weights, job.buffer, job.plan, job.guard, SearchSpace.from_dict(job.search.space),
                               job.search.trials, job.number, stop, job.search.trial_iterations)
        if stopped():
            return UpdateResult(Outcome.ABORTED)
        if found is None:
            return UpdateResult(Outcome.TOO_FEW_TASKS)
        return UpdateResult(Outcome.PROPOSED, found.proposal, found.config, found.params, found.figures)
    proposal = propose_guarded(learner, job.buffer, job.plan, job.guard, should_stop=stop)
    if stopped():
        return UpdateResult(Outcome.ABORTED)
    if proposal is None:
        return UpdateResult(Outcome.TOO_FEW_TASKS)
    return UpdateResult(Outcome.PROPOSED, proposal)


def _run_shadow(job: UpdateJob, stop, stopped) -> UpdateResult:
    from learners.online.shadows import propose_challenger, train_shadow

    sj = job.shadow
    if job.work is Work.CHALLENGE:
        proposal = propose_challenger(job.config, job.weights, sj.config, sj.weights, job.buffer, job.plan, job.guard, job.number,
                                      should_stop=stop)
        if stopped():
            return UpdateResult(Outcome.ABORTED)
        if proposal is None:
            return UpdateResult(Outcome.TOO_FEW_TASKS)
        return UpdateResult(Outcome.PROPOSED, proposal, sj.config)
    trained = train_shadow(sj.config, sj.weights, job.buffer, job.plan, job.number, should_stop=stop)
    if stopped():
        return UpdateResult(Outcome.ABORTED)
    if trained is None:
        return UpdateResult(Outcome.TOO_FEW_TASKS)
    weights, after, before = trained
    return UpdateResult(Outcome.PROPOSED, search_figures={"score_after": after, "score_before": before}, shadow_weights=weights)


def warm_up(hold_s: float = 0.0) -> bool:
    """Imported and ready: used to start update processes before the first update needs them
    (``hold_s`` keeps this one busy, so a second call starts a second process)."""
    time.sleep(hold_s)
    return True
