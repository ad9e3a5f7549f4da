"""A worker's rollouts: every version the gate passes becomes the champion (the first one) or a
canary rolled out by stable cohorts through the stages, judged on the agents' own reported losses
(``policy.py``); a newer routine candidate waits as the challenger, a drift update supersedes the
canary. Where the rollout starts follows the evidence agents can give (``policy.plan_start``): a
model no agent has reported on yet, or a fleet too quiet to judge a canary, means promotion at
once on the gate's verdict, so that improvements reach the agents at any rate of reports. Every change is a decision event, applied to the aliases as it is sent, so the log holds
the whole state. Operators' requests (``metastream rollout ...``, ``metastream ab start``) arrive as
events too (with operators' keys configured, only those signed by one of them are acted on; the
others are refused with an event), and A/B tests run here with the same sequential comparison.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

from streams.records.wire import ABTestSpec, Cause, DecisionType, Decide, RolloutPosition, decision_record
from streams.worker.rollout.policy import Move, RolloutRules, StartPlan, Verdict, judge, judge_rollout, plan_start
from streams.worker.rollout.sequential import compare, effect_scale
from streams.worker.rollout.serving import ServingStats
from streams.records.aliases import Aliases
from streams.records.signing import Verifier

Revert = Callable[[str, int | None], None]  # (model id, champion version): the worker goes back to the champion
REQUESTS = (DecisionType.ROLLOUT_REQUESTED, DecisionType.PROMOTE_REQUESTED, DecisionType.ROLLBACK_REQUESTED,
            DecisionType.AB_TEST_REQUESTED)


class RolloutManager:
    """Works on the aliases and serving figures each model's state holds (``ModelState.aliases``,
    ``ModelState.serving``)."""

    def __init__(self, models: Mapping, rules: RolloutRules, decide: Decide, enabled: bool = True,
                 revert: Revert | None = None, ab_max_s: float = 600.0, operators: Verifier | None = None) -> None:
        self.rules, self.decide, self.enabled = rules, decide, enabled
        self.models = models  # the worker's models, which change when the group moves one to another worker
        self.revert = revert
        self.ab_max_s = ab_max_s
        self.operators = operators  # the operators' keys a request must be signed with (None: not checked)

    @property
    def aliases(self) -> dict[str, Aliases]:
        return {m: s.aliases for m, s in list(self.models.items())}

    @property
    def serving(self) -> dict[str, ServingStats]:
        return {m: s.serving for m, s in list(self.models.items())}

    # --- events -------------------------------------------------------------------------------
    async def emit(self, model_id: str, kind: DecisionType, cause: Cause, version: int | None, reason: str,
                   figures: Mapping[str, float], **typed) -> None:
        """One decision (``typed``: the rollout position, A/B test or drop_challenger it sets)."""
        record = decision_record(kind, cause, model_id, reason, figures, version, **typed)
        self.aliases[model_id].apply(record)  # applied as it is, and sent encoded once
        await self.decide(record)

    def plan(self, model_id: str) -> StartPlan:
        """Where a rollout of a new version of ``model_id`` would start now."""
        return plan_start(self.serving[model_id], self.aliases[model_id].champion, model_id, self.rules, time.time() * 1000)

    async def _start(self, model_id: str, version: int, cause: Cause, reason: str, plan: StartPlan | None = None) -> None:
        """Start a rollout of ``version`` where ``plan`` says (an operator's request passes none: the first stage)."""
        stage, share, figures = (0, self.rules.stages[0], {}) if plan is None else (plan.stage, plan.share, plan.figures)
        self.serving[model_id].start_rollout()
        await self.emit(model_id, DecisionType.ROLLOUT_STARTED, cause, version, reason,
                        {**figures, "champion_version": self.aliases[model_id].champion or 0},
                        rollout=RolloutPosition(stage, share))

    async def _start_or_promote(self, model_id: str, version: int, cause: Cause, reason: str) -> None:
        """A gated version's turn: a rollout where the evidence allows one, else promotion now."""
        plan = self.plan(model_id)
        if plan.promote_now:
            await self.emit(model_id, DecisionType.ROLLOUT_PROMOTED, Cause.NO_EVIDENCE, version, plan.reason,
                            {**plan.figures, "previous_champion": self.aliases[model_id].champion or 0})
        else:
            await self._start(model_id, version, cause, reason, plan)

    async def on_published(self, model_id: str, version: int, cause: Cause) -> None:
        """A version the gate passed, made for ``cause`` (the update's trigger): champion, canary or
        challenger. A drift update answers now, and so does a remedy's student (queued as the
        challenger, newer routine versions took its place and it never went out): it replaces a
        running canary."""
        aliases = self.aliases[model_id]
        if aliases.champion is None or not self.enabled:
            cause = Cause.FIRST_VERSION if aliases.champion is None else Cause.OTHER
            await self.emit(model_id, DecisionType.ROLLOUT_PROMOTED, cause, version,
                            "the first version" if aliases.champion is None else "rollouts are off: published is champion", {})
        elif aliases.canary is None:
            await self._start_or_promote(model_id, version, cause, "a gated candidate")
        elif cause in (Cause.DRIFT, Cause.DISTIL):  # a drift's answer, or the slow-inference remedy's student: now
            what = "a drift update" if cause is Cause.DRIFT else "a student distilled for speed"
            await self.emit(model_id, DecisionType.ROLLED_BACK, Cause.SUPERSEDED, aliases.canary,
                            f"superseded by v{version}, {what}", {"superseded_by": version})
            await self._start_or_promote(model_id, version, cause, what)
        else:
            await self.emit(model_id, DecisionType.CHALLENGER_QUEUED, cause, version,
                            f"waits for the rollout of v{aliases.canary}", {"canary_version": aliases.canary})

    async def on_request(self, event: dict) -> None:
        """An operator's request (an event of one of :data:`REQUESTS`)."""
        model_id, kind, version = event["model_id"], DecisionType(event["event_type"]), event["version"]
        if model_id not in self.aliases:
            return
        if self.operators is not None and (why := self.operators.check(event, "DecisionEvent")) is not None:
            await self.emit(model_id, DecisionType.REQUEST_REFUSED, Cause.UNAUTHORISED, version, f"{kind.value} refused: {why}", {})
            return
        aliases = self.aliases[model_id]
        if kind is DecisionType.ROLLOUT_REQUESTED and version is not None:
            if aliases.canary is not None:
                await self.emit(model_id, DecisionType.ROLLED_BACK, Cause.OPERATOR, aliases.canary, f"replaced by v{version}", {})
            await self._start(model_id, version, Cause.OPERATOR, "an operator's request")
        elif kind is DecisionType.PROMOTE_REQUESTED and aliases.canary is not None:
            await self._promote(model_id, Verdict(Move.PROMOTE, Cause.OPERATOR, {}, "an operator promoted it"))
        elif kind is DecisionType.ROLLBACK_REQUESTED and aliases.canary is not None:
            await self._rollback(model_id, Verdict(Move.ROLLBACK, Cause.OPERATOR, {}, "an operator rolled it back"))
        elif kind is DecisionType.AB_TEST_REQUESTED and (spec := ABTestSpec.of(event)) is not None:
            self.serving[model_id].start_rollout()
            await self.emit(model_id, DecisionType.AB_TEST_STARTED, Cause.OPERATOR, None, f"A/B test of v{spec.a} against v{spec.b}",
                            {}, ab_test=spec)

    # --- decisions over time ------------------------------------------------------------------
    async def tick(self) -> None:
        """Judge every running rollout and A/B test once."""
        now = time.time() * 1000
        for model_id, aliases in self.aliases.items():
            if model_id not in self.models:
                continue  # moved to another worker while this tick awaited
            if aliases.ab is not None:
                await self._judge_ab(model_id, aliases, now)
            elif aliases.canary is not None:
                age = (now - (aliases.stage_started_ms or now)) / 1000
                verdict = judge_rollout(self.serving[model_id], aliases.champion, aliases.canary, self.rules, aliases.stage, age,
                                        self.models[model_id].heldout)
                if verdict.move is Move.ADVANCE:
                    stage = aliases.stage + 1
                    self.serving[model_id].start_stage()
                    await self.emit(model_id, DecisionType.ROLLOUT_ADVANCED, verdict.cause, aliases.canary, verdict.reason,
                                    verdict.figures, rollout=RolloutPosition(stage, self.rules.stages[stage]))
                elif verdict.move is Move.PROMOTE:
                    await self._promote(model_id, verdict)
                elif verdict.move is Move.ROLLBACK:
                    await self._rollback(model_id, verdict)

    async def _promote(self, model_id: str, verdict: Verdict) -> None:
        aliases = self.aliases[model_id]
        await self.emit(model_id, DecisionType.ROLLOUT_PROMOTED, verdict.cause, aliases.canary, verdict.reason,
                        {**verdict.figures, "previous_champion": aliases.champion or 0})
        if aliases.challenger is not None:
            await self._start_or_promote(model_id, aliases.challenger, aliases.challenger_cause, "the challenger's turn")

    async def _rollback(self, model_id: str, verdict: Verdict) -> None:
        aliases = self.aliases[model_id]
        await self.emit(model_id, DecisionType.ROLLED_BACK, verdict.cause, aliases.canary, verdict.reason,
                        {**verdict.figures, "champion_version": aliases.champion or 0}, drop_challenger=True)
        if self.revert is not None:
            self.revert(model_id, aliases.champion)

    async def _judge_ab(self, model_id: str, aliases: Aliases, now: float) -> None:
        ab, stats = aliases.ab, self.serving[model_id].rollout
        a, b = stats.get(ab.a), stats.get(ab.b)
        if a is None or b is None:
            result = None
        else:
            result = compare(a.losses, b.losses, self.rules.alpha, tau=effect_scale(a.losses, b.losses))
        decided = result is not None and (result.low > 0 or result.high < 0)
        if not decided and (now - ab.started_ms) / 1000 < self.ab_max_s:
            return
        figures = {}
        if result is not None:
            figures.update(effect=result.estimate, low=result.low, high=result.high, e_value=result.e_value, p_value=result.p_value,
                           n_a=result.n_a, n_b=result.n_b, mean_a=a.losses.mean, mean_b=b.losses.mean)
        if decided:
            better = ab.b if result.estimate < 0 else ab.a
            reason = f"v{better} has the lower loss: b - a in [{result.low:.3g}, {result.high:.3g}], e-value {result.e_value:.3g}"
        else:
            reason = f"no difference found in {self.ab_max_s:.0f}s"
        await self.emit(model_id, DecisionType.AB_TEST_FINISHED, Cause.DECIDED if decided else Cause.INCONCLUSIVE, None, reason,
                        {k: float(v) for k, v in figures.items()}, ab_test=ABTestSpec(ab.a, ab.b, ab.split))


__all__ = ["REQUESTS", "RolloutManager", "RolloutRules", "judge"]
