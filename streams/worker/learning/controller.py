"""The learn step of a worker: on a trigger, run an incremental meta-update off the event loop
(in an update process, ``pool.py``, so ingest never stalls), score candidate against
champion on held-out buffered tasks, then publish a new ModelVersion or reject it, with a decision
event either way.

A drift alarm is the urgent trigger: it pre-empts a routine update that is running (which would
only delay the answer to the drift) and trains mostly on the newest tasks."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from typing import Awaitable, Callable, Mapping

from learners.online import GuardedProposal, OnlineMetaLearner

from streams.worker.ingest import IngestResult
from streams.worker.metrics import WorkerMetrics
from streams.worker.learning.recipe import Recipe, recipe_of
from streams.records.wire import Cause, DecisionType, Decide, RolloutStage, decision_record, model_version, now_ms
from streams.settings import Settings
from streams.worker.state import ModelState, WorkerState
from streams.worker.learning.new_models import announce_cold_start
from streams.worker.learning.shadow_work import announce_challenge, run_challenge, train_shadow
from streams.worker.learning.forgetting import forgetting_report
from streams.worker.learning.mixture_events import announce_recognised, announce_retired, announce_routed
from streams.worker.learning.gate import gate_figures, gate_rejection, search_summary
from streams.worker.learning.jobs import build_job, precedence
from streams.worker.learning.pool import UpdatePool
from streams.worker.learning.process import Outcome, UpdateJob, UpdateResult, Work

log = logging.getLogger("metastream.learning")

Send = Callable[[str, bytes, bytes], Awaitable[None]]  # (topic, key, value)


class UpdateController:
    def __init__(self, state: WorkerState, settings: Settings, metrics: WorkerMetrics | None, send: Send,
                 decide: Decide | None = None) -> None:
        self.state, self.settings, self.metrics, self.send, self.decide = state, settings, metrics, send, decide
        self.signer = settings.signer()  # versions are signed when the worker has a key
        # updates run in separate processes: ingest never stalls, and torch.func (not thread-safe) stays in one thread
        context = multiprocessing.get_context("spawn")
        self._abort = context.Value("q", -1, lock=False)  # job number the update process must abandon
        self.pool = UpdatePool(2, self._abort)  # two processes, one under memory pressure (pool.py says why)
        self._updates, self._last, self.tasks = 0, {}, set()
        self._busy: dict[str, int] = {}  # model id -> updates of it in flight (2 only while one is pre-empted)
        self._running: dict[str, tuple[Cause, int]] = {}  # model id -> (trigger, job number) of the update that counts
        self._pending: dict[str, tuple[Cause, dict, bool]] = {}
        self.rollouts = None  # a RolloutManager, when versions are rolled out (set by the app)

    def revert(self, model_id: str, champion: int | None) -> None:
        """After a rollback: the worker learns on from the champion, not from the version rolled back."""
        state = self.state.models[model_id]
        rolled_back = state.learner
        if champion is None or not state.load_version(champion):
            log.warning("rolled back %s but the weights of its champion v%s are not in memory: learning goes on from v%s",
                        model_id, champion, state.version)
        elif state.shadows is not None and state.learner is not rolled_back:  # a champion switch rolled back
            state.shadows.switch_back(rolled_back, state.learner.config)

    def warm_up(self) -> list:
        """Start the update processes now (importing torch there takes seconds); their futures."""
        return self.pool.warm()

    async def on_ingest(self, result: IngestResult) -> None:
        """What an ingested batch asks for: on a drift alarm a ``DriftDetected`` event (the loss
        level before and after the change) and a drift update; after enough new tasks, an update;
        when a shadow candidate now beats the champion, a ``ShadowChallenged`` event and its challenge."""
        if result.cold_start is not None:
            await announce_cold_start(self, result.model_id, result.cold_start)
        if result.scored is not None:
            await announce_challenge(self, result.model_id)
        if result.regime is not None:
            await announce_routed(self, result.model_id, result.regime)
        if result.trigger is None:
            return
        state = self.state.models[result.model_id]
        monitor = state.drift.monitor
        figures = {"observations": monitor.observations, "at_ms": now_ms()}
        alarm = result.alarm
        if alarm is None:
            figures.update(loss=result.loss, recent_loss=monitor.level())
        else:
            figures.update(level_before=alarm.level_before, level_after=alarm.level_after, era=state.drift.era)
            await self.decide(decision_record(
                DecisionType.DRIFT_DETECTED, Cause.DRIFT, result.model_id,
                f"{alarm.detector}: few-shot loss rose from {alarm.level_before:.3g} to {alarm.level_after:.3g}",
                figures, state.version))
        self.request(result.model_id, result.trigger, figures)

    def request(self, model_id: str, trigger: Cause, figures: Mapping[str, float], work: Work = Work.UPDATE) -> None:
        """Ask for an update (or a search, or a distillation, whose result is the candidate);
        one runs per model, and one more is remembered while it does. A drift alarm pre-empts a
        routine update or a search: that one is told to stop, the drift one starts now."""
        figures = dict(figures)
        if model_id not in self.state.models:
            return  # not this worker's model (any more): its owner learns it
        state = self.state.models[model_id]
        if model_id in self._busy:
            running = self._running.get(model_id)
            if trigger is Cause.DRIFT and running is not None and running[0] is not Cause.DRIFT:
                self._abort.value = running[1]
                self._start(model_id, trigger, figures, work)
                return
            pending = self._pending.get(model_id)
            if pending is None or trigger is Cause.DRIFT or precedence(trigger, work) > precedence(pending[0], pending[2]):
                if pending is not None and pending[2] is Work.CHALLENGE and work is not Work.CHALLENGE:
                    state.challenging = None  # a drift update goes first; the shadow may challenge again later
                self._pending[model_id] = (trigger, figures, work)
                self._count_in_flight(model_id)
            elif work is Work.CHALLENGE:
                state.challenging = None
            return
        self._start(model_id, trigger, figures, work)

    def request_search(self, model_id: str, trigger: Cause, figures: Mapping[str, float]) -> bool:
        """A search, unless one of this model started less than ``search_cooldown_s`` ago."""
        state = self.state.models.get(model_id)
        if state is None or time.monotonic() - state.last_search < self.settings.search.cooldown_s:
            return False
        state.last_search = time.monotonic()
        self.request(model_id, trigger, figures, Work.SEARCH)
        return True

    def request_distil(self, model_id: str, figures: Mapping[str, float]) -> None:
        """A smaller student of the champion, as a candidate (the slow-inference remedy)."""
        self.request(model_id, Cause.DISTIL, figures, Work.DISTIL)

    def _count_in_flight(self, model_id: str) -> None:
        if self.metrics is not None:
            self.metrics.updates_in_flight.labels(model_id).set(self._busy.get(model_id, 0) + (model_id in self._pending))

    def _start(self, model_id: str, trigger: Cause, figures: dict, work: Work = Work.UPDATE) -> None:
        self._busy[model_id] = self._busy.get(model_id, 0) + 1
        self._count_in_flight(model_id)
        self._updates += 1
        self._running[model_id] = (trigger, self._updates)  # claimed now, so a drift alarm can pre-empt it at once
        task = asyncio.ensure_future(self._run(model_id, trigger, figures, self._updates, work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, model_id: str, trigger: Cause, figures: dict, job: int, work: Work = Work.UPDATE) -> None:
        try:
            gap = self.settings.update.min_gap_s - (time.monotonic() - self._last.get(model_id, -1e9))
            if gap > 0 and trigger is not Cause.DRIFT:
                await asyncio.sleep(gap)
            published = await self.update(model_id, trigger, figures, job, work)
            if not published and (trigger, work) in ((Cause.DRIFT, Work.UPDATE), (Cause.DISTIL, Work.DISTIL)):
                self._retry(model_id, trigger, work, figures, job)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed update is logged with its traceback; the worker goes on ingesting
            log.exception("meta-update of %s failed", model_id)
        finally:
            self._last[model_id] = time.monotonic()
            if self._running.get(model_id, (None, None))[1] == job:
                self._running.pop(model_id)
            self._busy[model_id] -= 1
            if not self._busy[model_id]:
                del self._busy[model_id]
                state = self.state.models.get(model_id)
                if (work is Work.UPDATE and trigger in (Cause.NEW_TASKS, Cause.SCHEDULE) and state is not None
                        and state.shadows is not None and state.shadows.shadows):
                    self._start(model_id, trigger, {}, Work.SHADOW)  # each routine update is followed by a shadow's
                elif model_id in self._pending:
                    self.request(model_id, *self._pending.pop(model_id))
            self._count_in_flight(model_id)

    def _retry(self, model_id: str, trigger: Cause, work: Work, figures: Mapping[str, float], job: int) -> None:
        """A rejected drift update leaves the drift unanswered, a rejected student the latency: it runs again on
        the tasks that came since, up to ``drift_retries`` times, unless a newer one took its place (pre-empted)."""
        key = f"{trigger.value}_retry"
        tries, pending = int(figures.get(key, 0)), self._pending.get(model_id)
        state = self.state.models.get(model_id)
        if trigger is Cause.DRIFT and state is not None and state.guard.recognised_era >= state.drift.era:
            return  # answered by routing: a component already serves the regime
        if self._running.get(model_id, (None, None))[1] == job and tries < self.settings.update.drift_retries and (
                pending is None or pending[0] is not trigger):  # it goes before a routine update that waits
            self.request(model_id, trigger, {**figures, key: float(tries + 1), "at_ms": now_ms()}, work)

    def job(self, state: ModelState, trigger: Cause, number: int, work: Work = Work.UPDATE) -> UpdateJob:
        return build_job(state, self.settings, trigger, number, work)

    async def update(self, model_id: str, trigger: Cause, figures: Mapping[str, float], number: int,
                     work: Work = Work.UPDATE) -> bool:
        if work is Work.SHADOW:
            return await train_shadow(self, model_id, trigger, number)
        if work is Work.CHALLENGE:
            return await run_challenge(self, model_id, trigger, figures, number)
        return await self.propose_and_publish(model_id, trigger, figures, number, work) is not None

    async def propose_and_publish(self, model_id: str, trigger: Cause, figures: Mapping[str, float], number: int,
                      work: Work = Work.UPDATE) -> dict[str, float] | None:
        """The update proper; the published version's figures, or ``None`` when nothing was published."""
        search = work is Work.SEARCH
        state = self.state.models[model_id]

        async def decide(kind: DecisionType, cause: Cause, reason: str, figs: Mapping[str, float]) -> None:
            await self.decide(decision_record(kind, cause, model_id, reason, figs, state.version))

        await decide(DecisionType.SEARCH_STARTED if search else DecisionType.UPDATE_STARTED, trigger, trigger.value, figures)
        lineage = state.lineage.ranges()
        job = self.job(state, trigger, number, work)
        recipe = recipe_of(job, trigger.value, state.weights_version, self.state.positions, now_ms(), self.settings.replay_settings())
        state.new_tasks = 0
        started = time.perf_counter()
        result = await self.run_job(job)
        seconds = time.perf_counter() - started
        self.metrics.update_seconds.labels(model_id).observe(seconds)
        if self._abort.value == number or result.outcome is Outcome.ABORTED:  # pre-empted, even if it got to the end
            await decide(DecisionType.VERSION_REJECTED, Cause.PREEMPTED, "pre-empted by a drift alarm", {"update_seconds": seconds})
            return None
        if result.outcome is Outcome.TOO_FEW_TASKS:
            await decide(DecisionType.VERSION_REJECTED, Cause.TOO_FEW_TASKS, "not enough buffered tasks to train and hold out",
                         {"tasks": job.buffer.num_tasks})
            self._rejected(model_id)
            return None
        proposal = result.proposal
        if search:
            await decide(DecisionType.SEARCH_FINISHED, trigger, *search_summary(result))
        self._watch_trend(state, proposal, job.buffer.num_tasks_seen)
        await announce_recognised(state, job, proposal, decide)
        state.guard.record(recipe.weights_from, proposal.champion_era_scores)  # its parent, scored on today's probes
        if proposal.first_forgetting and await self._forgetting(model_id, proposal, decide):
            return None
        figs = gate_figures(state.learner.kind, proposal, seconds, number)
        worse = gate_rejection(state.learner, proposal, self.settings.update.margin)
        if worse is not None:
            self._rejected(model_id)
            await decide(DecisionType.VERSION_REJECTED, Cause.WORSE_THAN_CHAMPION, worse, figs)
            return None
        if search or work is Work.DISTIL:  # what made the candidate, beside its trigger
            figs["trigger_search" if search else "distilled"] = 1.0
        await self.state.ownership.settled.wait()  # during a rebalance, wait to learn whether the model is still ours
        if self.state.models.get(model_id) is not state:
            log.info("%s went to another worker while its update ran: the candidate is dropped", model_id)
            return None
        await self._publish(state, trigger, proposal, figs, lineage, result, recipe)
        await decide(DecisionType.VERSION_PUBLISHED, Cause.SEARCH if search else Cause.DISTIL if work is Work.DISTIL else trigger,
                     trigger.value, figs)
        await announce_retired(proposal, decide)
        if self.rollouts is not None:
            await self.rollouts.on_published(model_id, state.version, trigger)
        return figs

    async def run_job(self, job: UpdateJob) -> UpdateResult:
        """Run an update job in an update process."""
        return await self.pool.run(job)

    def _watch_trend(self, state: ModelState, proposal: GuardedProposal, seen: int) -> None:
        """The champion's held-out loss (the gate's: relative MSE, error rate) joins accuracy_trend's
        signal; ``seen``: the job's buffer's tasks ever seen (half its held-out tasks new: a new measurement)."""
        state.trend.add(proposal.champion_loss, seen)

    async def _publish(self, state: ModelState, trigger: Cause, proposal: GuardedProposal, figs: dict, lineage: list,
                       result: UpdateResult, recipe: Recipe) -> None:
        weights_from = recipe.weights_from  # what the candidate was trained from (after a rollback, the champion)
        parent = weights_from or None
        if result.config is not None:  # a search's winner: its config (rates, continual strengths) goes with it
            state.learner = OnlineMetaLearner(result.config)
        state.learner.load_weights(proposal.weights)
        state.version += 1
        state.weights_version = state.version
        metrics = {**figs, "trigger_drift": float(trigger is Cause.DRIFT)}
        state.guard.record(state.version, proposal.era_scores, weights_from)
        if state.drift.first_drift_ms is not None:
            metrics["drift_first_event_ms"] = float(state.drift.first_drift_ms)
            state.drift.first_drift_ms, state.drift.alarm_levels = None, None
        state.remember(state.version, proposal.weights, state.learner.config)
        state.rejected_streak, state.last_published = 0, time.monotonic()
        await self.send(self.settings.topics.models, state.model_id.encode(), model_version(
            state.model_id, state.version, parent, state.learner.config["algo"], proposal.weights, state.learner.config,
            metrics, lineage, era_points=proposal.era_scores, signer=self.signer, recipe=recipe.to_json(),
            stage=RolloutStage.PRODUCTION if self.rollouts is None else RolloutStage.CANDIDATE))
        self.metrics.published.labels(state.model_id).inc()
        self.metrics.champion_version.labels(state.model_id).set(state.version)

    async def _forgetting(self, model_id: str, proposal: GuardedProposal, decide) -> bool:
        """Report a candidate that forgot (ForgettingDetected); True when it must be rejected."""
        report = forgetting_report(proposal, self.settings.guard_for(self.state.models[model_id].learner.config).max_drop)
        self.metrics.forgetting.labels(model_id, "rejected" if report.rejected else "remediated").inc()
        await decide(DecisionType.FORGETTING_DETECTED, Cause.FORGETTING if report.rejected else Cause.REMEDIATED,
                     report.reason, report.figures)
        if report.rejected:
            self._rejected(model_id)
            await decide(DecisionType.VERSION_REJECTED, Cause.FORGETTING, "candidate forgets old tasks", report.figures)
        return report.rejected

    def _rejected(self, model_id: str) -> None:
        self.metrics.versions_rejected.labels(model_id).inc()
        self.state.models[model_id].rejected_streak += 1

    def close(self) -> None:
        self.pool.close()
