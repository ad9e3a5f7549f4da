"""Replaying experiences through the worker's own ingest path, with what the log recorded beside
them: the losses the live worker fed its drift detector after each message (``scores``; the live
scoring depends on the champion of the moment and on wall-clock rate limits, which a replay
cannot reproduce) and the buffer shrinks a remedy made (``events``, anchored at the log positions
where they happened). A restarted worker rebuilds its state this way, and ``metastream audit
rebuild`` rebuilds the buffer an update saw.

>>> shrinks = [Shrink("", {0: 10}, 1000)]
>>> [s.due("m", 0, 9) for s in shrinks], [s.due("m", 0, 10) for s in shrinks]
([False], [True])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.worker.ingest import Ingestor
from streams.records.wire import Cause, DecisionType
from streams.worker.state import WorkerState
from streams.worker.state.health import Quarantine
from streams.kafka.topics import read_range, read_records

SHRINK_AT = "at_partition_"  # figures of a shrink's (or quarantine's) RemediationTaken: the next offset per partition then
PURGED = "purged_tasks"  # figure of a quarantine's RemediationTaken: the agent's buffered tasks it dropped (a replay drops them too)
BOUND_AFTER = "bound_after_"  # figure of a shrink's RemediationTaken, per model id: the buffer's byte bound it set
RELEASE_MS = "release_ms"  # figure of a quarantine's RemediationTaken: when it ends, on the messages' clock


@dataclass(frozen=True)
class Shrink:
    """A buffer shrink of ``model_id`` ("" for every model), made when the worker stood at
    ``positions`` (partition -> next offset): each buffer's bound set to ``bounds[model]`` and
    evicted to it (shrinks recorded before the bounds were: evicted to half the bound, which
    stayed); with ``agent``, a quarantine's purge of that agent's buffered tasks instead."""

    model_id: str
    positions: dict[int, int]
    at_ms: int
    agent: str = ""
    bounds: dict[str, int] = field(default_factory=dict)

    def applies_to(self, model_id: str) -> bool:
        return self.model_id in ("", model_id)

    def due(self, model_id: str, partition: int, offset: int) -> bool:
        """Made before the message at ``partition``/``offset`` was ingested."""
        return self.applies_to(model_id) and offset >= self.positions.get(partition, 0)


def shrink_figures(positions: dict[int, int]) -> dict[str, float]:
    return {f"{SHRINK_AT}{p}": float(o) for p, o in positions.items()}


def positions_of(figures: dict[str, float]) -> dict[int, int]:
    """The log positions a shrink's or quarantine's figures recorded (``shrink_figures`` read back)."""
    return {int(k[len(SHRINK_AT):]): int(v) for k, v in figures.items() if k.startswith(SHRINK_AT)}


def shrinks_from(events: list[dict[str, Any]]) -> list[Shrink]:
    out = []
    for e in events:
        if e["event_type"] == DecisionType.REMEDIATION_TAKEN.value and e["cause"] == Cause.SHRINK.value:
            positions = positions_of(e["figures"])
            bounds = {k[len(BOUND_AFTER):]: int(v) for k, v in e["figures"].items() if k.startswith(BOUND_AFTER)}
            if positions:
                out.append(Shrink(e["model_id"], positions, e["timestamp_ms"], bounds=bounds))
        elif (e["event_type"] == DecisionType.REMEDIATION_TAKEN.value and e["cause"] == Cause.QUARANTINE.value
              and e.get("agent_id") and e["figures"].get(PURGED)):
            out.append(Shrink("", positions_of(e["figures"]), e["timestamp_ms"], e["agent_id"]))
    return sorted(out, key=lambda s: s.at_ms)


def quarantines_from(events: list[dict[str, Any]]) -> list[tuple[str, Quarantine, int]]:
    """``(agent, quarantine, at_ms)`` of every quarantine on ``events`` that names its agent and
    where it began (records before DecisionEvent v3 did not: those cannot be re-applied)."""
    out = []
    for e in events:
        if (e["event_type"] == DecisionType.REMEDIATION_TAKEN.value and e["cause"] == Cause.QUARANTINE.value
                and e.get("agent_id") and RELEASE_MS in e["figures"]):
            out.append((e["agent_id"], Quarantine(positions_of(e["figures"]), e["figures"][RELEASE_MS]), e["timestamp_ms"]))
    return out


class ScoreLog:
    """The ``scores`` topic: per experience message, what the detector was fed after it; when a
    message was scored twice (a worker re-read it after a crash), the word in force at a time."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._by_message: dict[tuple[int, int], list[tuple[int, str, list[str], np.ndarray]]] = {}
        for rec in records:
            self._by_message.setdefault((rec["source_partition"], rec["source_offset"]), []).append(
                (rec["timestamp_ms"], rec["model_id"], rec["task_ids"], np.asarray(rec["losses"], "f4")))

    @classmethod
    async def read(cls, bootstrap: str, topic: str, first: dict[int, int] | None = None) -> "ScoreLog":
        return cls([rec for _, rec in await read_records(bootstrap, topic, "ScoreRecord", first=first)])

    def at(self, partition: int, offset: int, until_ms: int | None = None) -> dict[str, tuple[list[str], np.ndarray]]:
        """Per model, the losses fed after that message: the last word, or the last one written by
        ``until_ms`` (a worker that re-read the message after a crash wrote a second)."""
        out: dict[str, tuple[list[str], np.ndarray]] = {}
        for at_ms, model_id, task_ids, losses in self._by_message.get((partition, offset), ()):
            if until_ms is None or at_ms <= until_ms:
                out[model_id] = (task_ids, losses)
        return out


async def replay_experiences(state: WorkerState, ingestor: Ingestor, bootstrap: str, topic: str, stops: dict[int, int],
                             scores: ScoreLog, shrinks: list[Shrink], models: set[str], only_keys: bool = False,
                             until_ms: int | None = None, starts: dict[int, int] | None = None,
                             quarantines: list[tuple[str, Quarantine, int]] = ()) -> int:
    """Ingest (``replay=True``) every message of ``topic`` from ``starts`` (default: the beginning;
    a snapshot's positions) before ``stops``, applying each shrink of
    ``models`` where it happened; ``only_keys`` skips messages keyed by another model. Shrinks made
    after the last message but before the stops (and, given ``until_ms``, before that time) are
    applied at the end. The ``quarantines`` made (before ``until_ms``) refuse the messages they
    covered, wherever they fall in the replay. Returns the messages replayed."""
    for agent, q, at_ms in quarantines:
        if until_ms is None or at_ms < until_ms:
            state.health.add_quarantine(agent, q)
    pending = {m: [s for s in shrinks if s.applies_to(m) and (until_ms is None or s.at_ms < until_ms)] for m in models}
    messages = 0
    async for msg in read_range(bootstrap, topic, stops, first=starts):
        key = msg.key.decode(errors="replace") if msg.key is not None else None
        if only_keys and key not in models:
            continue
        if key in pending:
            _apply(state, key, [s for s in pending[key] if s.due(key, msg.partition, msg.offset)], pending)
        ingestor.ingest(msg.value, msg.key, msg.topic, msg.partition, msg.offset, replay=True, timestamp_ms=msg.timestamp)
        for model_id, (_, losses) in scores.at(msg.partition, msg.offset, until_ms).items():
            if model_id in models:
                ingestor.feed_replayed(model_id, losses)
        messages += 1
    for m, left in pending.items():
        _apply(state, m, [s for s in left if all(o <= stops.get(p, 0) for p, o in s.positions.items() if p in stops)], pending)
    return messages


def _apply(state: WorkerState, model_id: str, due: list[Shrink], pending: dict[str, list[Shrink]]) -> None:
    model = state.models.get(model_id)
    for s in due:
        pending[model_id].remove(s)
        if model is not None and s.agent:
            model.purge_agent(s.agent)
        elif model is not None and model_id in s.bounds:
            model.buffer.max_bytes = s.bounds[model_id]
            model.buffer.evict_to(model.buffer.max_bytes)
        elif model is not None:
            model.buffer.evict_to(model.buffer.max_bytes // 2)
