"""The learn step of a worker: on a trigger, run an incremental meta-update off the event loop
(in a separate process, so ingest never stalls), score candidate against champion on held-out
buffered tasks, then publish a new ModelVersion or reject it, with a decision event either way.

A drift alarm is the urgent trigger: it pre-empts a routine update that is running (which would
only delay the answer to the drift) and trains mostly on the newest tasks."""

from __future__ import annotations

import asyncio
import logging
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Awaitable, Callable

from learners.online import init_update_process, propose_update, warm_up

from .ingest import Ingestor, ModelState

log = logging.getLogger("metastream.learning")
from .publishing import decision, model_version, now_ms

Send = Callable[[str, bytes, bytes], Awaitable[None]]  # (topic, key, value)


class UpdateController:
    def __init__(self, ingestor: Ingestor, send: Send) -> None:
        self.ingestor = ingestor
        self.settings = ingestor.settings
        self.metrics = ingestor.metrics
        self.send = send
        # updates run in a separate process: ingest never stalls, and torch.func (not thread-safe)
        # is never used from two threads of one process
        context = multiprocessing.get_context("spawn")
        self._abort = context.Value("q", -1, lock=False)  # job number the update process must abandon
        # two processes: a drift update starts at once in the second while a pre-empted routine
        # update winds down in the first (it stops at its next iteration)
        self._executor = ProcessPoolExecutor(max_workers=2, mp_context=context, initializer=init_update_process,
                                             initargs=(self._abort,))
        self._updates = 0
        self._busy: dict[str, int] = {}  # model id -> updates of it in flight (2 only while one is pre-empted)
        self._running: dict[str, tuple[str, int]] = {}  # model id -> (reason, job number) of the update that counts
        self._pending: dict[str, tuple[str, dict]] = {}
        self._last: dict[str, float] = {}
        self.tasks: set[asyncio.Task] = set()

    def warm_up(self) -> None:
        """Start both update processes now (importing torch there takes seconds)."""
        for _ in range(2):
            self._executor.submit(warm_up, 1.0)

    def request(self, model_id: str, reason: str, figures: dict[str, float]) -> None:
        """Ask for an update; one runs per model, and one more is remembered while it does. A
        drift alarm pre-empts a routine update: that one is told to stop, the drift one starts now."""
        if model_id in self._busy:
            running = self._running.get(model_id)
            if reason == "drift" and running is not None and running[0] != "drift":
                self._abort.value = running[1]
                self._start(model_id, reason, figures)
                return
            if reason == "drift" or model_id not in self._pending:
                self._pending[model_id] = (reason, figures)
            return
        self._start(model_id, reason, figures)

    def _start(self, model_id: str, reason: str, figures: dict[str, float]) -> None:
        self._busy[model_id] = self._busy.get(model_id, 0) + 1
        self._updates += 1
        self._running[model_id] = (reason, self._updates)  # claimed now, so a drift alarm can pre-empt it at once
        task = asyncio.ensure_future(self._run(model_id, reason, figures, self._updates))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, model_id: str, reason: str, figures: dict[str, float], job: int) -> None:
        try:
            gap = self.settings.min_update_gap_s - (time.monotonic() - self._last.get(model_id, -1e9))
            if gap > 0 and reason != "drift":
                await asyncio.sleep(gap)
            await self.update(model_id, reason, figures, job)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed update is logged; the worker goes on ingesting
            log.exception("meta-update of %s failed", model_id)
        finally:
            self._last[model_id] = time.monotonic()
            if self._running.get(model_id, (None, None))[1] == job:
                self._running.pop(model_id)
            self._busy[model_id] -= 1
            if not self._busy[model_id]:
                del self._busy[model_id]
                if model_id in self._pending:
                    self.request(model_id, *self._pending.pop(model_id))

    async def update(self, model_id: str, reason: str, figures: dict[str, float], job: int) -> bool:
        state: ModelState = self.ingestor.models[model_id]
        key = model_id.encode()
        events = self.settings.events_topic
        await self.send(events, key, decision("UpdateStarted", model_id, reason, figures, state.version))
        snapshot = state.buffer.snapshot()
        lineage = state.lineage()
        state.new_tasks = 0
        s = self.settings
        started = time.perf_counter()
        drift = reason == "drift"
        recent, share = (s.drift_update_recent, s.drift_update_share) if drift else (64, 0.5)
        iterations = s.drift_update_iterations if drift else s.update_iterations
        distill, ewc = s.continual_strengths(state.learner.config)
        guard = {"probes": state.probes, "best": dict(state.best), "max_drop": s.guard_max_drop, "distill": distill, "ewc": ewc,
                 "old_tasks": state.old_tasks(snapshot.task_ids()), "current_era": state.era} if s.guard else None
        proposal = await asyncio.get_running_loop().run_in_executor(
            self._executor, propose_update, state.learner.config, state.learner.weights_bytes(), snapshot,
            iterations, s.update_meta_batch, s.heldout_tasks, job, recent, share, guard)
        seconds = time.perf_counter() - started
        self.metrics.update_seconds.labels(model_id).observe(seconds)
        if self._abort.value == job or (proposal is not None and proposal.get("aborted")):  # pre-empted, even if it got to the end
            await self.send(events, key, decision("VersionRejected", model_id, "pre-empted by a drift alarm",
                                                  {"update_seconds": seconds}, state.version))
            return False
        if proposal is None:
            await self.send(events, key, decision("VersionRejected", model_id, "not enough buffered tasks to train and hold out",
                                                  {"tasks": snapshot.num_tasks}, state.version))
            self.metrics.versions_rejected.labels(model_id).inc()
            return False
        for era, points in proposal.get("champion_era_scores", {}).items():
            state.best[era] = max(state.best.get(era, -float("inf")), points)  # the champion is a published version
        if "first_forgetting" in proposal:
            if await self._forgetting(model_id, proposal, state.version):
                return False
        score_name = "mse" if state.learner.kind == "regression" else "accuracy"
        figs = {f"candidate_{score_name}": proposal["candidate_score"], f"champion_{score_name}": proposal["champion_score"],
                "update_seconds": seconds, "train_tasks": proposal["train_tasks"], "heldout_tasks": proposal["heldout_tasks"]}
        if not state.learner.better(proposal["candidate_score"], proposal["champion_score"], s.margin):
            self.metrics.versions_rejected.labels(model_id).inc()
            await self.send(events, key, decision("VersionRejected", model_id, f"candidate worse than champion by more than {s.margin:.0%}",
                                                  figs, state.version))
            return False
        parent = state.version or None
        weights = proposal["weights"]
        state.learner.load_weights(weights)
        state.version += 1
        metrics = {**figs, "trigger_drift": float(reason == "drift"),
                   **{f"era_{era}_points": points for era, points in proposal.get("era_scores", {}).items()}}
        for era, points in proposal.get("era_scores", {}).items():
            state.best[era] = max(state.best.get(era, -float("inf")), points)
        if state.first_drift_ms is not None:
            metrics["drift_first_event_ms"] = float(state.first_drift_ms)
            state.first_drift_ms = None
        await self.send(self.settings.models_topic, key, model_version(
            model_id, state.version, parent, state.learner.config["algo"], weights, state.learner.config, metrics, lineage))
        await self.send(events, key, decision("VersionPublished", model_id, reason, figs, state.version))
        self.metrics.published.labels(model_id).inc()
        self.metrics.champion_version.labels(model_id).set(state.version)
        return True

    async def _forgetting(self, model_id: str, proposal: dict, version: int) -> bool:
        """Report a candidate that forgot (ForgettingDetected); True when it must be rejected."""
        key = model_id.encode()
        rejected = "forgetting" in proposal
        first = proposal["first_forgetting"]
        best = proposal.get("best_era_scores", {})
        figures = {}
        for era, drop in first.items():
            figures[f"era_{era}_best_points"] = best.get(era, float("nan"))
            figures[f"era_{era}_drop_points"] = drop
        for era, points in proposal.get("era_scores", {}).items():
            figures[f"era_{era}_candidate_points"] = points
        outcome = "rejected" if rejected else "remediated"
        self.metrics.forgetting.labels(model_id, outcome).inc()
        reason = (f"candidate lost more than {self.settings.guard_max_drop:g} points on era(s) {sorted(first)}; "
                  + ("still after more replay, distillation and EWC: rejected" if rejected
                     else "remediated with more replay, distillation and EWC"))
        await self.send(self.settings.events_topic, key, decision("ForgettingDetected", model_id, reason, figures, version))
        if rejected:
            self.metrics.versions_rejected.labels(model_id).inc()
            await self.send(self.settings.events_topic, key, decision("VersionRejected", model_id, "candidate forgets old tasks", figures, version))
        return rejected

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def drift_figures(state: ModelState, loss: float) -> dict[str, float]:
    return {"loss": loss, "recent_loss": state.drift.level(), "observations": state.drift.observations, "at_ms": now_ms()}
