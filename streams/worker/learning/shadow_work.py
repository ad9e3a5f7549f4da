"""A worker's shadow candidates at work (``learners/online/shadows.py`` holds the pool): every
other routine update trains the shadow the bandit picks, silently; a shadow that beats the
champion on the same incoming tasks is announced (``ShadowChallenged``) and its challenge runs as
an update whose candidate is that shadow, judged by the same gate and guard and rolled out like
any version; when it is published the two swap places (``ChampionSwitched``, with the prequential
and the gate's figures)."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Protocol

from streams.records.wire import Cause, DecisionType, decision_record, now_ms
from streams.worker.learning.process import Outcome, UpdateJob, UpdateResult, Work

log = logging.getLogger("metastream.shadows")


class UpdatePort(Protocol):
    """What shadow work needs of the worker's update controller (``controller.py`` provides it)."""

    state: Any
    settings: Any

    async def send(self, topic: str, key: bytes, value: bytes) -> Any: ...
    def request(self, model_id: str, cause: Cause, figures: Mapping[str, float], work: Work) -> None: ...
    def job(self, state: Any, trigger: Cause, number: int, work: Work) -> UpdateJob: ...
    async def run_job(self, job: UpdateJob) -> UpdateResult: ...
    async def propose_and_publish(self, model_id: str, trigger: Cause, figures: Mapping[str, float], number: int,
                                  work: Work) -> dict[str, float] | None: ...


async def announce_challenge(ctl: UpdatePort, model_id: str) -> None:
    """After new tasks were scored: the shadow that now leads by the margin challenges (one at a time)."""
    state = ctl.state.models.get(model_id)
    if state is None or state.shadows is None or state.challenging is not None:
        return
    challenge = state.shadows.challenger()
    if challenge is None:
        return
    state.challenging = challenge.name
    figures = {**challenge.figures(), "at_ms": now_ms()}
    await ctl.decide(decision_record(
        DecisionType.SHADOW_CHALLENGED, Cause.SHADOW, model_id,
        f"shadow {challenge.name} scored {challenge.shadow_reward:.3f} against the champion's ({state.shadows.champion_name}) "
        f"{challenge.champion_reward:.3f} on the last {challenge.tasks} incoming tasks: it goes through the gate",
        figures, state.version))
    ctl.request(model_id, Cause.SHADOW, figures, Work.CHALLENGE)


async def train_shadow(ctl: UpdatePort, model_id: str, trigger: Cause, number: int) -> bool:
    """Train the shadow the bandit picked on a snapshot of the buffer; nothing is published."""
    state = ctl.state.models[model_id]
    job = ctl.job(state, trigger, number, Work.SHADOW)
    state.new_tasks = 0
    result = await ctl.run_job(job)
    shadow = state.shadows.shadows.get(job.shadow.name) if state.shadows is not None else None
    if result.outcome is Outcome.PROPOSED and shadow is not None:
        shadow.learner.load_weights(result.shadow_weights)
        shadow.updates += 1
        log.info("shadow %s of %s trained: held-out score %.3f -> %.3f", shadow.name, model_id,
                 result.search_figures["score_before"], result.search_figures["score_after"])
    return False


async def run_challenge(ctl: UpdatePort, model_id: str, trigger: Cause, figures: Mapping[str, float],
                        number: int) -> bool:
    """The challenge of the announced shadow: published, the two swap places; rejected (or
    pre-empted), the shadow must earn its lead again on new tasks."""
    state = ctl.state.models[model_id]
    name, old = state.challenging, state.learner
    published = None
    try:
        published = await ctl.propose_and_publish(model_id, trigger, figures, number, Work.CHALLENGE)
    finally:
        state.challenging = None
        if state.shadows is not None and name in state.shadows.shadows:
            if published is not None:
                state.shadows.swap(name, old)
            else:
                state.shadows.reset(name)
    if published is None:
        return False
    await ctl.decide(decision_record(
        DecisionType.CHAMPION_SWITCHED, Cause.SHADOW, model_id,
        f"v{state.version} is shadow {name}; the former champion stays on as a shadow", {**figures, **published}, state.version))
    return True
