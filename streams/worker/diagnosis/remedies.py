"""What a diagnosis does: every diagnosis is a ``DiagnosisMade`` event with its figures, every
action a ``RemediationTaken`` event; the actions reuse the worker's own machinery (a search or an
update in the update process, whose candidate is gated and rolled out like any other; the buffer
bound; the quarantine the ingest path honours)."""

from __future__ import annotations


from streams.worker.diagnosis.memory import largest_child_bytes, release_freed, used_bytes, worker_budget
from streams.worker.recovery.log_replay import BOUND_AFTER, PURGED, RELEASE_MS, shrink_figures
from streams.records.wire import Cause, DecisionType, Decide, decision_record, now_ms
from streams.settings import Settings
from streams.worker.state import WorkerState
from streams.worker.state.health import Quarantine
from streams.worker.diagnosis.engine import Cleared, Diagnosis
from streams.worker.diagnosis.rules import Action, Signal

ROOM, ROOM_S = 0.7, 60.0  # ... and taken back once the worker with one more stays under this share for this long
FLOOR_SHARE = 1 / 16  # a buffer's bound is never halved below this share of METASTREAM_BUFFER_MB
TRIGGER = {Signal.SCORE_TREND: Cause.SCORE_TREND, Signal.STUCK_S: Cause.STUCK}  # what an update a rule asks for answers
CAUSE = {Action.SEARCH: Cause.SEARCH, Action.RETRAIN: Cause.RETRAIN, Action.DISTIL: Cause.DISTIL, Action.SHRINK: Cause.SHRINK,
         Action.QUARANTINE: Cause.QUARANTINE, Action.ALERT: Cause.ALERT}  # the cause a diagnosis and its remedy are logged with


class Remedies:
    def __init__(self, state: WorkerState, settings: Settings, controller, decide: Decide, metrics=None) -> None:
        self.state, self.settings, self.controller, self.decide, self.metrics = state, settings, controller, decide, metrics
        self._roomy_since: float | None = None  # since when there has been room to take back an update process

    async def act(self, d: Diagnosis) -> None:
        action = d.rule.action
        cause = CAUSE[action]
        figures = {"value": d.value, "bound": d.rule.bound}
        agent = d.context.get(d.rule.context_agent) or None if action is Action.QUARANTINE else None
        await self.decide(decision_record(DecisionType.DIAGNOSIS_MADE, cause, d.model_id or "", f"{d.rule.name}: {d.rule.why}",
                                          figures, agent_id=agent, rule=d.rule.name))
        if self.metrics is not None:
            self.metrics.diagnoses.labels(d.rule.name, action.value).inc()
        done = await self._do(d, action, figures)
        await self.decide(decision_record(DecisionType.REMEDIATION_TAKEN, cause, d.model_id or "", done, figures, agent_id=agent,
                                          rule=d.rule.name))

    async def cleared(self, c: Cleared) -> None:
        """A diagnosis healed: its signal is back within the bound."""
        d = c.diagnosis
        agent = d.context.get(d.rule.context_agent) or None if d.rule.action is Action.QUARANTINE else None
        figures = {"value": c.value, "bound": d.rule.bound, "open_s": c.open_s}
        await self.decide(decision_record(DecisionType.DIAGNOSIS_CLEARED, CAUSE[d.rule.action], d.model_id or "",
                                          f"{d.rule.name} cleared after {c.open_s:.1f}s: {d.rule.signal.value} is "
                                          f"{c.value:.3g}, within its bound {d.rule.bound:g}", figures, agent_id=agent,
                                          rule=d.rule.name))

    async def _do(self, d: Diagnosis, action: Action, figures: dict[str, float]) -> str:
        models = [d.model_id] if d.model_id else list(self.state.models)
        trigger = TRIGGER.get(d.rule.signal, Cause.OTHER)
        if action is Action.SEARCH:
            started = [m for m in models if self.controller.request_search(m, trigger, {"value": d.value})]
            return f"search started for {', '.join(started)}" if started else "a search ran recently: none started"
        if action is Action.RETRAIN:
            for m in models:
                self.controller.request(m, Cause.RETRAIN, {"value": d.value})
            return f"update on recent data for {', '.join(models)}"
        if action is Action.DISTIL:
            for m in models:
                self.controller.request_distil(m, {"value": d.value})
            return f"a student at {self.settings.diagnosis.distil_factor:g}x width distilled for {', '.join(models)}"
        if action is Action.SHRINK:
            return self._shrink(figures)
        if action is Action.QUARANTINE:
            agent = d.context.get(d.rule.context_agent)
            if not agent:
                return "no agent to quarantine (the rejected data named none)"
            # where on the log and until when on its clock: a replay refuses the same messages
            release_ms = now_ms() + self.settings.diagnosis.quarantine_s * 1000
            self.state.health.add_quarantine(agent, Quarantine(dict(self.state.positions), release_ms))
            figures.update(shrink_figures(self.state.positions))
            figures[RELEASE_MS] = release_ms
            # what it sent before is noise too: out of the replay buffers, or it goes on poisoning updates (a replay drops the same)
            noise = d.rule.signal is Signal.AGENT_HIGH_LOSS_SHARE  # judged noise (not merely too much of it: a flood's data is good)
            figures[PURGED] = float(sum(m.purge_agent(agent) for m in self.state.models.values())) if noise else 0.0
            return (f"agent {agent} quarantined for {self.settings.diagnosis.quarantine_s:.0f}s: its experiences go to the dead-letter "
                    f"topic; its {figures[PURGED]:.0f} buffered tasks dropped")
        return "alert raised for a person"

    def _shrink(self, figures: dict[str, float]) -> str:
        """The memory rule's remedy: evict half of what every replay buffer holds and keep its bound
        there (not below a floor), then hand the freed memory back; the figures say where on the log (a replay makes
        the same bounds at the same point) and the memory before and after."""
        floor = int(self.settings.ingest.buffer_mb * 2**20 * FLOOR_SHARE)
        before, freed = used_bytes(), 0
        figures.update(shrink_figures(self.state.positions))
        for mid, m in self.state.models.items():
            held = m.buffer.bytes
            figures[f"{BOUND_AFTER}{mid}"] = float(m.buffer.halve(floor))
            freed += held - m.buffer.bytes
        release_freed()
        after, budget = used_bytes(), worker_budget(self.settings.diagnosis)
        figures.update(used_mb_before=before / 2**20, used_mb_after=after / 2**20, budget_mb=budget / 2**20,
                       share_after=after / budget)
        bounds = sum(m.buffer.max_bytes for m in self.state.models.values())
        floored = all(m.buffer.max_bytes <= floor for m in self.state.models.values())
        pool = getattr(self.controller, "pool", None)
        bound = figures["bound"]  # the memory rule's: still above it after the buffers are halved, an update process goes
        gave = after > bound * budget and pool is not None and pool.resize(pool.size - 1)
        if pool is not None:
            figures["update_processes"] = float(pool.size)
        return (f"replay buffers halved: {freed / 2**20:.1f} MiB of tasks evicted (uniformly), their bound now "
                f"{bounds / 2**20:.1f} MiB in all; the worker holds {after / 2**20:.0f} MiB of its {budget / 2**20:.0f} MiB budget (was "
                f"{before / 2**20:.0f})" + (f"; still above {bound:.0%}: one update process given back ({pool.size} left; it "
                                            "exits when its job ends)" if gave else "")
                + ("; the buffers are at their floor: give the worker more memory" if floored and not gave else ""))

    async def regrow(self, now: float) -> None:
        """Take back an update process the memory remedy gave back, once the worker plus one more
        process (as large as the biggest now) has stayed under ``ROOM`` of the budget for
        ``ROOM_S`` seconds: a limit that is still tight keeps it given back, without flapping."""
        pool = getattr(self.controller, "pool", None)
        if pool is None or pool.size >= pool.configured:
            self._roomy_since = None
            return
        used, budget, one = used_bytes(), worker_budget(self.settings.diagnosis), largest_child_bytes()
        if (used + one) >= ROOM * budget:
            self._roomy_since = None
            return
        self._roomy_since = self._roomy_since if self._roomy_since is not None else now
        if now - self._roomy_since < ROOM_S:
            return
        pool.resize(pool.configured)
        pool.warm()
        self._roomy_since = None
        await self.decide(decision_record(DecisionType.REMEDIATION_TAKEN, Cause.SHRINK, "", (
            f"memory has room again ({used / 2**20:.0f} MiB of {budget / 2**20:.0f}, {one / 2**20:.0f} MiB more for a process): "
            f"back to {pool.size} update processes"), {"used_mb": used / 2**20, "budget_mb": budget / 2**20,
                                                       "update_processes": float(pool.size)}, rule="memory_pressure"))
