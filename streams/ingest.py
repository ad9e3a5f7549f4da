"""The ingest path of a worker, synchronous and fast: decode, validate, de-duplicate, buffer,
prequential loss, drift. It never raises on bad input: it returns a dead letter with the reason.

Everything here is derived state: a restarted worker rebuilds it by replaying the log through
:meth:`Ingestor.ingest` with ``replay=True`` (no triggers fire while replaying).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learners.guard import ProbeSet
from learners.online import OnlineMetaLearner
from learners.replay import TaskReplayBuffer
from schemas import AvroCodec, CodecError

from .drift import DriftMonitor
from .metrics import WorkerMetrics
from .settings import Settings
from .validation import Rejected, validate_batch

EXPERIENCES = AvroCodec("ExperienceBatch")
DEAD_LETTERS = AvroCodec("DeadLetter")


class SeenIds:
    """Event ids already counted, bounded: two generations of plain sets, the older dropped when
    the newer fills up, so memory stays below ``capacity`` ids and look-ups stay O(1)."""

    def __init__(self, capacity: int = 5_000_000) -> None:
        self.capacity = capacity
        self._new: set[str] = set()
        self._old: set[str] = set()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._new or event_id in self._old

    def add(self, event_id: str) -> None:
        self._new.add(event_id)
        if len(self._new) >= self.capacity // 2:
            self._old, self._new = self._new, set()

    def update(self, event_ids) -> None:
        for event_id in event_ids:
            self.add(event_id)

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


@dataclass
class ModelState:
    model_id: str
    learner: OnlineMetaLearner
    buffer: TaskReplayBuffer
    drift: DriftMonitor
    seen: SeenIds = field(default_factory=SeenIds)
    counted: int = 0
    duplicates: int = 0
    new_tasks: int = 0
    version: int = 0
    offsets: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # (topic, partition) -> [first, last]
    first_drift_ms: int | None = None
    complete: list[str] = field(default_factory=list)  # tasks with enough points, not yet scored for drift
    scored: SeenIds = field(default_factory=lambda: SeenIds(1_000_000))
    tokens: float = 0.0
    last_loss: float = float("nan")
    token_time: float = field(default_factory=time.monotonic)
    era: int = 0  # drift alarms so far: tasks of one era come from one distribution
    probes: ProbeSet = field(default_factory=ProbeSet)  # the forgetting guard's tasks, per era
    best: dict[int, float] = field(default_factory=dict)  # best probe score of each era under a published version
    task_era: dict[str, int] = field(default_factory=dict)  # era of each buffered task (pruned at each update)

    def old_tasks(self, task_ids: list[str]) -> list[str]:
        """Tasks of earlier eras among ``task_ids``; forgets the era of tasks no longer listed."""
        self.task_era = {t: self.task_era.get(t, self.era) for t in task_ids}
        return [t for t, e in self.task_era.items() if e < self.era]

    def lineage(self) -> list[dict[str, Any]]:
        return [{"topic": t, "partition": p, "start_offset": lo, "end_offset": hi}
                for (t, p), (lo, hi) in sorted(self.offsets.items())]


@dataclass
class IngestResult:
    model_id: str | None = None
    accepted: int = 0
    duplicates: int = 0
    drift: bool = False
    loss: float = float("nan")
    dead_letter: bytes | None = None
    reason: str | None = None
    trigger: str | None = None
    oldest_timestamp_ms: int | None = None


class Ingestor:
    def __init__(self, settings: Settings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.dims = settings.dims()
        self.classifiers = settings.classifiers()
        widest = max((f + 3 * t for f, t in self.dims.values()), default=1)  # features, targets, predictions, losses
        self.max_message_bytes = settings.max_batch_rows * max(widest, 64) * 4 + 2**20
        per_model_bytes = int(settings.buffer_mb * 2**20 / max(len(settings.models), 1))
        self.models = {
            mid: ModelState(mid, OnlineMetaLearner(cfg), TaskReplayBuffer(per_model_bytes, settings.max_points_per_task),
                            DriftMonitor(settings.drift_detector), probes=ProbeSet(settings.guard_probes))
            for mid, cfg in settings.models.items()
        }
        self.positions: dict[int, int] = {}  # partition -> next offset to read

    def dead_letter(self, value: Any, key: bytes | None, topic: str, partition: int, offset: int, kind: str, message: str) -> IngestResult:
        self.metrics.rejected.labels(kind).inc()
        original = value if isinstance(value, (bytes, bytearray)) else repr(value).encode()
        record = {"original": bytes(original), "original_key": key, "source_topic": topic, "source_partition": partition,
                  "source_offset": offset, "error_kind": kind, "message": message[:2000], "timestamp_ms": int(time.time() * 1000)}
        return IngestResult(dead_letter=DEAD_LETTERS.encode(record), reason=kind)

    def ingest(self, value: Any, key: bytes | None, topic: str, partition: int, offset: int, replay: bool = False) -> IngestResult:
        self.positions[partition] = offset + 1
        try:
            if isinstance(value, (bytes, bytearray)) and len(value) > self.max_message_bytes:
                raise Rejected("oversize", f"message of {len(value)} bytes is larger than any valid batch")
            record = EXPERIENCES.decode(value)
            batch = validate_batch(record, known_models=self.dims, max_rows=self.settings.max_batch_rows,
                                   classifiers=self.classifiers)
        except CodecError as exc:
            return self.dead_letter(value, key, topic, partition, offset, exc.kind, str(exc))
        except Rejected as exc:
            return self.dead_letter(value, key, topic, partition, offset, exc.kind, str(exc))
        except Exception as exc:  # noqa: BLE001 - bad input must never stop the worker
            return self.dead_letter(value, key, topic, partition, offset, "invalid", f"{type(exc).__name__}: {exc}")

        state = self.models[batch.model_id]
        span = state.offsets.setdefault((topic, partition), [offset, offset])
        span[1] = max(span[1], offset)
        seen, in_batch = state.seen, {}
        for i, eid in enumerate(batch.event_ids):  # a retry can repeat ids inside one batch too
            if eid not in seen and eid not in in_batch:
                in_batch[eid] = i
        fresh = list(in_batch.values())
        result = IngestResult(model_id=batch.model_id, duplicates=len(batch) - len(fresh))
        if result.duplicates:
            state.duplicates += result.duplicates
            self.metrics.duplicates.labels(batch.model_id).inc(result.duplicates)
        if not fresh:
            return result
        rows = np.asarray(fresh) if len(fresh) < len(batch) else slice(None)
        x, y = batch.features[rows], batch.targets[rows]
        state.seen.update(in_batch)
        task_ids = [batch.task_ids[i] for i in fresh]
        groups: dict[str, list[int]] = {}
        for i, tid in enumerate(task_ids):
            groups.setdefault(tid, []).append(i)
        before = state.buffer.num_tasks_seen
        for tid, idx in groups.items():
            if tid in state.probes.ids:
                continue  # a held-out probe of the forgetting guard: never trained on
            state.task_era.setdefault(tid, state.era)
            if len(idx) == len(task_ids):
                state.buffer.add(tid, x, y)
            else:
                state.buffer.add(tid, x[idx[0] : idx[-1] + 1] if idx[-1] - idx[0] + 1 == len(idx) else x[idx],
                                 y[idx[0] : idx[-1] + 1] if idx[-1] - idx[0] + 1 == len(idx) else y[idx])
        state.new_tasks += state.buffer.num_tasks_seen - before
        state.counted += len(fresh)
        result.accepted = len(fresh)
        result.oldest_timestamp_ms = min(batch.timestamps_ms[i] for i in fresh)
        self.metrics.ingested.labels(batch.model_id).inc(len(fresh))
        result.drift = self._watch_drift(state, groups)
        result.loss = state.last_loss
        if replay:
            return result
        if result.drift:
            self.metrics.drift_alarms.labels(batch.model_id, state.drift.name).inc()
            result.trigger = "drift"
        elif state.new_tasks >= self.settings.new_tasks_trigger:
            result.trigger = "new_tasks"
        return result

    def _watch_drift(self, state: ModelState, task_ids) -> bool:
        """Score tasks once they hold enough points (few-shot prequential loss, in groups so the
        adaptation is batched) and feed each task's loss to the drift detector."""
        need = state.learner.points_per_task
        now = time.monotonic()
        # a token bucket bounds the scoring work (and so its share of the ingest path) at high rates
        state.tokens = min(self.settings.drift_tasks_per_s, state.tokens + (now - state.token_time) * self.settings.drift_tasks_per_s)
        state.token_time = now
        for tid in task_ids:
            if tid not in state.scored and state.buffer.has(tid) and state.buffer.count(tid) >= need:
                state.scored.add(tid)
                if self.settings.guard and state.probes.offer(state.era, *state.buffer.arrays(tid), task_id=tid):
                    state.buffer.remove(tid)
                    continue
                if state.tokens >= 1:
                    state.tokens -= 1
                    state.complete.append(tid)
        if len(state.complete) < self.settings.drift_group:
            return False
        losses = state.learner.fewshot_losses(state.buffer, state.complete, self.settings.drift_steps)
        state.complete = []
        fired = False
        for loss in losses:
            fired = state.drift.update(float(loss)) or fired
        if fired:
            state.era += 1
        state.last_loss = float(losses.mean()) if len(losses) else state.last_loss
        return fired

    def refresh_gauges(self) -> None:
        for mid, st in self.models.items():
            self.metrics.buffer_bytes.labels(mid).set(st.buffer.bytes)
            self.metrics.buffer_tasks.labels(mid).set(st.buffer.num_tasks)
            self.metrics.prequential_loss.labels(mid).set(st.drift.level())
            self.metrics.champion_version.labels(mid).set(st.version)
