"""The ingest path of a worker, synchronous and fast: decode, validate, de-duplicate, buffer,
prequential loss, drift. It never raises on bad input: it returns a dead letter with the reason.

It changes only the :class:`~streams.worker.state.WorkerState` it is handed. A restarted worker rebuilds
that state by replaying the log through :meth:`Ingestor.ingest` with ``replay=True`` (no
triggers fire while replaying).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas import CodecError, codec_for
from schemas.experiences import ExperienceColumns

from learners.registry import task_kind
from learners.tasks.coherence import incoherent
from learners.transfer.cold_start import WarmStart

from streams.worker.metrics import WorkerMetrics
from streams.worker.learning.new_models import adopt, warm_start
from streams.catalog.presets import missing_ok, model_dims
from streams.records.wire import Cause, dead_letter
from streams.settings import Settings
from streams.worker.state import DriftAlarm, ModelState, WorkerState, home_partition
from streams.worker.state.regime import RegimeShift, watch_routes
from streams.worker.validation import Rejected, validate_batch


@dataclass
class IngestResult:
    model_id: str | None = None
    accepted: int = 0
    duplicates: int = 0
    alarm: DriftAlarm | None = None
    loss: float = float("nan")
    dead_letter: bytes | None = None
    reason: str | None = None
    trigger: Cause | None = None  # Cause.DRIFT or Cause.NEW_TASKS: an update is due
    oldest_timestamp_ms: int | None = None
    scored: tuple[list[str], np.ndarray] | None = None  # tasks scored and the losses fed to the detector (a ScoreRecord)
    cold_start: WarmStart | None = None  # a new model's first tasks chose where it starts
    regime: RegimeShift | None = None  # a mixture's scored tasks moved to another component (a regime it knows)


def rows_by_task(task_ids) -> dict[str, list[int]]:
    """The rows of each task id, in order of first appearance (a batch holds runs of one task's rows:
    they are found by comparing neighbours, not row by row into a dict).

    >>> rows_by_task(["a", "a", "b", "a"])
    {'a': [0, 1, 3], 'b': [2]}
    """
    n = len(task_ids)
    starts = [0] + [i for i in range(1, n) if task_ids[i] != task_ids[i - 1]] + [n]
    groups: dict[str, list[int]] = {}
    for a, b in zip(starts, starts[1:]):
        if a < b:
            groups.setdefault(task_ids[a], []).extend(range(a, b))
    return groups


class Ingestor:
    def __init__(self, state: WorkerState, settings: Settings, metrics: WorkerMetrics) -> None:
        self.state = state
        self.settings = settings
        self.metrics = metrics
        self.dims = settings.dims()
        self.classifiers = settings.classifiers()
        self.missing_ok = settings.missing_ok()
        widest = max((f + 3 * t for f, t in self.dims.values()), default=1)  # features, targets, predictions, losses
        self.max_message_bytes = settings.ingest.max_batch_rows * max(widest, 64) * 4 + 2**20
        self._experiences = codec_for("ExperienceBatch")

    def dead_letter(self, value: Any, key: bytes | None, topic: str, partition: int, offset: int, kind: str,
                    message: str, agent_id: str | None = None) -> IngestResult:
        self.metrics.rejected.labels(kind).inc()
        self.state.health.note_dead_letter(agent_id)
        return IngestResult(dead_letter=dead_letter(value, key, topic, partition, offset, kind, message), reason=kind)

    def ingest(self, value: Any, key: bytes | None, topic: str, partition: int, offset: int, replay: bool = False,
               timestamp_ms: float | None = None) -> IngestResult:
        """Take one experience message. Replaying (``replay=True``), nothing is scored: the losses the
        live worker fed its detectors after this message (its ScoreRecords) are fed again by
        :meth:`feed_replayed`, so detector, eras and probes come out as they were. Completed tasks
        are scored in batches (:meth:`score_due` scores those whose window passed between messages)."""
        self.state.positions[partition] = offset + 1
        record = None
        try:
            if isinstance(value, (bytes, bytearray)) and len(value) > self.max_message_bytes:
                raise Rejected("oversize", f"message of {len(value)} bytes is larger than any valid batch")
            record = self._experiences.decode(value)
            batch = self._admit(record, len(value), topic, partition, offset, timestamp_ms)
        except (CodecError, Rejected) as exc:
            agent = record.get("agent_id") if isinstance(record, dict) else None
            return self.dead_letter(value, key, topic, partition, offset, exc.kind, str(exc), agent)

        state = self.state.models[batch.model_id]
        state.lineage.note(topic, partition, offset)
        state.last_message = (partition, offset)
        fresh = state.dedup.fresh(batch.event_ids)
        result = IngestResult(model_id=batch.model_id, duplicates=len(batch) - len(fresh))
        if result.duplicates:
            self.metrics.duplicates.labels(batch.model_id).inc(result.duplicates)
        if not fresh:
            return result
        everything = len(fresh) == len(batch)
        rows = slice(None) if everything else np.asarray(fresh)
        task_ids = batch.task_ids if everything else [batch.task_ids[i] for i in fresh]
        groups = rows_by_task(task_ids)
        self._buffer(state, groups, batch.features[rows], batch.targets[rows], len(task_ids))
        state.note_agent(groups, batch.agent_id)
        result.accepted = len(fresh)
        result.oldest_timestamp_ms = int(batch.timestamps_ms[rows].min())
        self.metrics.ingested.labels(batch.model_id).inc(len(fresh))
        if batch.model_version is not None and batch.losses is not None:
            self._record_serving(state, batch, rows, groups, result.oldest_timestamp_ms)
        if state.cold_start_pending and not replay:  # a new agent type: its first full tasks choose where it starts
            first = state.buffer.tasks_with(state.learner.points_per_task)[:8]
            if first:
                result.cold_start = warm_start(self.state, state, first)
        ready = self._note_ready(state, groups, batch.agent_id, take=not replay)
        if replay:
            return result
        if ready:
            self._score_into(result, state)
        result.loss = state.drift.last_loss
        if result.alarm is None and state.new_tasks >= self.settings.update.new_tasks_trigger:
            result.trigger = Cause.NEW_TASKS
        return result

    def _admit(self, record: dict, size: int, topic: str, partition: int, offset: int, timestamp_ms: float | None) -> ExperienceColumns:
        """The decoded record as a valid batch of a model this worker holds, from an agent that is
        neither quarantined nor over its quota; else :class:`Rejected` with the reason."""
        if self.settings.catalog.new_models and record.get("model_id") not in self.dims:
            self.adopt(str(record.get("model_id")))
        batch = validate_batch(record, known_models=self.dims, max_rows=self.settings.ingest.max_batch_rows,
                               classifiers=self.classifiers, missing_ok=self.missing_ok)
        if batch.model_id not in self.state.models:
            raise Rejected("not_owned", f"model {batch.model_id!r} is learned by the worker that holds partition "
                           f"{home_partition(batch.model_id, self.state.ownership.partitions)} of {topic!r}; this message "
                           f"came on partition {partition}: key experiences by their model id and use Kafka's default partitioner")
        at = time.time() * 1000 if timestamp_ms is None else timestamp_ms  # the log's clock: a replay decides the same
        if self.state.health.quarantine and self.state.health.quarantined(batch.agent_id, partition, offset, at):
            raise Rejected("quarantined", f"agent {batch.agent_id!r} is in quarantine: most of the data it sent was unusable")
        if self.state.quota.enabled:
            if (why := self.state.quota.admit(batch.agent_id, len(batch), size, at)) is not None:
                raise Rejected("over_quota", why)
        return batch

    @staticmethod
    def _buffer(state: ModelState, groups: dict[str, list[int]], x: np.ndarray, y: np.ndarray, rows: int) -> None:
        """Each task's new rows into the replay buffer (a guard's probe is never trained on); new tasks count towards the next update."""
        before = state.buffer.num_tasks_seen
        for tid, idx in groups.items():
            if tid in state.guard.probes.ids:
                continue
            state.guard.note_task(tid, state.drift.era)
            if len(idx) == rows:
                state.buffer.add(tid, x, y)
            elif idx[-1] - idx[0] + 1 == len(idx):  # contiguous rows: a view, no copy
                state.buffer.add(tid, x[idx[0] : idx[-1] + 1], y[idx[0] : idx[-1] + 1])
            else:
                state.buffer.add(tid, x[idx], y[idx])
        state.new_tasks += state.buffer.num_tasks_seen - before

    @staticmethod
    def _record_serving(state: ModelState, batch: ExperienceColumns, rows, groups: dict[str, list[int]], at: int) -> None:
        """What production saw of the version the agent was served: one observation per task (its
        rows share one adaptation, so they are not independent samples), for the rollout's verdicts."""
        aliases = state.aliases
        started = aliases.ab.started_ms if aliases.ab is not None else aliases.started_ms
        stage = aliases.stage_started_ms
        losses = batch.losses[rows]
        task_losses = np.array([losses[idx].mean() for idx in groups.values()], "f8")
        task_latencies = None
        if batch.latencies is not None:
            latencies = batch.latencies[rows]
            task_latencies = np.array([latencies[idx].mean() for idx in groups.values()], "f8")
        state.serving.record(batch.model_version, task_losses, task_latencies,
                             in_rollout=started is None or at >= started, in_stage=stage is None or at >= stage,
                             agent_id=batch.agent_id, at_ms=at)

    def score_due(self, now: float | None = None) -> list[tuple[IngestResult, int, int]]:
        """Score the models whose pending tasks waited their window (called between messages, by a
        timer): ``(result, partition, offset)`` each, with the last message ingested for the model
        (its ScoreRecord is replayed after that message)."""
        out = []
        s = self.settings
        for model_id, state in list(self.state.models.items()):
            if state.last_message is None or not state.drift.due(s.drift.group, s.drift.window_s, now):
                continue
            result = IngestResult(model_id=model_id)
            self._score_into(result, state)
            result.loss = state.drift.last_loss
            out.append((result, *state.last_message))
        return out

    def feed_replayed(self, model_id: str, losses: np.ndarray) -> None:
        """Replaying: feed what the live worker fed ``model_id``'s detector (a ScoreRecord's losses)."""
        state = self.state.models.get(model_id)
        if state is not None:
            self._feed(state, losses)

    def _score_into(self, result: IngestResult, state: ModelState) -> None:
        """Score the pending tasks, feed the detector; an alarm asks for a drift update."""
        result.scored = self._score(state)
        result.regime = watch_routes(state.regime, state.learner.champion, len(result.scored[0]))
        result.alarm = self._feed(state, result.scored[1])
        if result.alarm is not None:
            self.metrics.drift_alarms.labels(state.model_id, result.alarm.detector).inc()
            result.trigger = Cause.DRIFT
            if state.drift.first_drift_ms is None:
                state.drift.first_drift_ms = result.oldest_timestamp_ms or int(time.time() * 1000)
                state.drift.alarm_levels = (result.alarm.level_before, result.alarm.level_after)

    def adopt(self, model_id: str) -> None:
        """A new agent type the policy takes on: its shapes join the validation's (the model joins
        this worker's state when its home partition is this worker's)."""
        if self.settings.new_model_config(model_id) is None:
            return
        if len(self.state.adopted) >= self.settings.catalog.new_models_max:
            raise Rejected("new_model_cap", f"model {model_id!r} matches METASTREAM_NEW_MODELS but {len(self.state.adopted)} "
                           "models were adopted already: raise METASTREAM_NEW_MODELS_MAX")
        adopt(self.state, self.settings, model_id)
        config = self.state.configs[model_id]
        self.dims[model_id] = model_dims(config)
        if task_kind(config) == "classification":
            self.classifiers = self.classifiers | {model_id}
        if missing_ok(config):
            self.missing_ok = self.missing_ok | {model_id}

    def _note_ready(self, state: ModelState, task_ids, agent_id: str, take: bool = True) -> bool:
        """Tasks that now hold enough points are scored once: a few become the forgetting guard's
        probes, the rest queue for scoring while the token bucket allows (``take``). True when the
        pending tasks are due to be scored (a full group, or the oldest waited its window)."""
        need = state.learner.points_per_task
        watch, s = state.drift, self.settings
        watch.refill(s.drift.tasks_per_s)
        for tid in task_ids:
            if tid not in watch.scored and state.buffer.has(tid) and state.buffer.count(tid) >= need:
                watch.scored.add(tid)
                if s.guard.enabled and state.guard.probes.offer(watch.era, *state.buffer.arrays(tid), task_id=tid):
                    state.buffer.remove(tid)
                    continue
                if take and watch.take_token():
                    if not watch.pending:
                        watch.pending_since = time.monotonic()
                    watch.pending.append(tid)
                    watch.task_agent[tid] = agent_id
        return watch.due(s.drift.group, s.drift.window_s)

    def _score(self, state: ModelState) -> tuple[list[str], np.ndarray]:
        """Few-shot prequential loss of the pending tasks (batched adaptation)."""
        watch = state.drift
        scored = state.learner.fewshot_losses_by_task(state.buffer, watch.pending, self.settings.drift.steps)
        for tid, (_, plain) in scored.items():  # who sent what fits neither the champion nor itself (a noisy or poisoning agent)
            noise = state.buffer.has(tid) and incoherent(*state.buffer.arrays(tid), state.learner.kind)
            self.state.health.note_agent_loss(watch.task_agent.get(tid, ""), plain, noise)
        watch.pending, watch.task_agent = [], {}
        if state.shadows is not None:  # the shadows on the same tasks, split the same way: a paired comparison
            state.shadows.observe(state.learner, state.learner.last_batch, self.settings.drift.steps)
        state.observe_rollout(state.learner.last_batch, self.settings.drift.steps)  # its canary and champion, paired
        return list(scored), np.asarray([signal for signal, _ in scored.values()], "f4")

    @staticmethod
    def _feed(state: ModelState, losses: np.ndarray) -> DriftAlarm | None:
        """Feed each task's loss to the drift detector; an alarm opens a new era."""
        watch, alarm = state.drift, None
        for loss in losses:
            alarm = watch.monitor.update(float(loss)) or alarm
        if alarm is not None:
            watch.era += 1
        watch.last_loss = float(np.mean(losses)) if len(losses) else watch.last_loss
        return alarm

    def refresh_gauges(self) -> None:
        self.metrics.buffer_bound.set(sum(st.buffer.max_bytes for st in self.state.models.values()))
        self.metrics.candidate_reward.clear()  # a switch changes who is champion: no stale role stays
        for mid, st in self.state.models.items():
            champion = st.serving.versions.get(st.aliases.champion) if st.aliases.champion is not None else None
            if champion is not None and champion.latencies:
                self.metrics.champion_latency.labels(mid).set(champion.p95_latency())
            self.metrics.score_trend.labels(mid).set(st.trend.change())
            self.metrics.buffer_bytes.labels(mid).set(st.buffer.bytes)
            self.metrics.buffer_tasks.labels(mid).set(st.buffer.num_tasks)
            self.metrics.prequential_loss.labels(mid).set(st.drift.monitor.level())
            self.metrics.drift_observations.labels(mid).set(st.drift.monitor.observations)
            self.metrics.era.labels(mid).set(st.drift.era)
            for era, probes in st.guard.probes.tasks.items():
                self.metrics.guard_probes.labels(mid, str(era)).set(len(probes))
            self.metrics.champion_version.labels(mid).set(st.version)
            if st.shadows is not None:
                for row in st.shadows.table():
                    self.metrics.candidate_reward.labels(mid, row["name"], row["role"]).set(row["reward"])
            self.metrics.owned.labels(mid).set(1)
