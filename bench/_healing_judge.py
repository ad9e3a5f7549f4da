"""How ``self_heal.py`` judges an injected fault, strictly: *detected* only by an event the product
itself put on the events topic about that fault (the time from injection to that event), *resolved*
only by the criterion of its kind below, checked on the log and on what the agents are served.

| fault | detected by (product event) | resolved when |
| drift | DriftDetected, or RegimeRecognised | a version published for the drift (cause drift), or the component a RegimeRecognised names, serves the fleet as champion and the agents' reported loss is within 10% of its level before the fault |
| noisy_agent | DiagnosisMade noisy_agent naming the injected agent | that agent is quarantined and no other agent was |
| slow_version | RolledBack of the slow version, or DiagnosisMade slow_inference while it is champion | that version is no longer served |
| bad_version | RolledBack of the bad version | that version is no longer served |
| memory | DiagnosisMade memory_pressure | the worker's memory (its update processes included) is under 80% of its budget again |
| crash | WorkerRestarted (cause crash) from the restarted worker | the worker has read the whole log and counted every distinct accepted event id on it exactly once |
| broker_pause | DiagnosisMade broker_unreachable | as for a crash |

"Counted exactly once": the bench reads every event id on the experiences topic (a set), leaves out
the messages the dead-letter topic names (a quarantined agent's), and compares the size of that set
with the worker's count of accepted experiences once the worker has committed the log's end; the
fleet holds its sends meanwhile. The worker counts an id only when it has not counted it before, so
a lost id shows as a count below the set's size and a double count as one above (a lost and a double
counted id in the same check would cancel; the integration tests compare the sets themselves).
"""

from __future__ import annotations

import asyncio

from streams.records.wire import Cause, DecisionType as D


def since(events: list[dict], at_ms: int, *kinds: D) -> list[dict]:
    return [e for e in events if e["timestamp_ms"] >= at_ms and e["event_type"] in [k.value for k in kinds]]


def detection(kind: str, events: list[dict], at_ms: int, ctx: dict) -> list[dict]:
    """The product's events that say it found this fault (empty: not yet)."""
    if kind == "drift":
        return since(events, at_ms, D.DRIFT_DETECTED, D.REGIME_RECOGNISED)
    if kind == "noisy_agent":
        return [e for e in since(events, at_ms, D.DIAGNOSIS_MADE) if "noisy_agent" in e["reason"] and e["agent_id"] == ctx["agent"]]
    if kind in ("slow_version", "bad_version"):
        tagged = ctx.get("version")
        if tagged is None:
            return []
        back = [e for e in since(events, at_ms, D.ROLLED_BACK) if e["version"] == tagged and Cause(e["cause"]) is not Cause.SUPERSEDED]
        slow = [e for e in since(events, at_ms, D.DIAGNOSIS_MADE) if kind == "slow_version" and "slow_inference" in e["reason"]
                and ctx["champion_now"]() == tagged]
        return back + slow
    if kind == "memory":
        return [e for e in since(events, at_ms, D.DIAGNOSIS_MADE) if "memory_pressure" in e["reason"]]
    if kind == "crash":
        return [e for e in since(events, at_ms, D.WORKER_RESTARTED) if Cause(e["cause"]) is Cause.CRASH]
    if kind == "broker_pause":
        return [e for e in since(events, at_ms, D.DIAGNOSIS_MADE) if "broker_unreachable" in e["reason"]]
    raise ValueError(kind)


def drift_answered(events: list[dict], at_ms: int, champion: int | None) -> bool:
    """Whether the served champion is a version made for the drift, or the drift was routed home."""
    made = {e["version"] for e in since(events, at_ms, D.VERSION_PUBLISHED) if Cause(e["cause"]) is Cause.DRIFT}
    return champion in made or bool(since(events, at_ms, D.REGIME_RECOGNISED))


def others_quarantined(events: list[dict], at_ms: int, agent: str) -> list[str]:
    return [e["agent_id"] for e in since(events, at_ms, D.REMEDIATION_TAKEN)
            if Cause(e["cause"]) is Cause.QUARANTINE and e["agent_id"] and e["agent_id"] != agent]


class LogLedger:
    """Every distinct event id on the experiences topic, read incrementally, and the messages the
    dead-letter topic names."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.ids_at: dict[tuple[int, int], list[str]] = {}  # (partition, offset) -> its event ids
        self.next: dict[int, int] = {}
        self.dlq_next: dict[int, int] = {}
        self.refused: set[tuple[int, int]] = set()

    async def catch_up(self) -> None:
        from schemas import CodecError, codec_for
        from schemas.experiences import id_columns
        from streams.kafka.topics import read_range

        batches, letters = codec_for("ExperienceBatch"), codec_for("DeadLetter")
        async for m in read_range(self.bootstrap, "experiences", first=dict(self.next) or None):
            self.next[m.partition] = m.offset + 1
            try:
                self.ids_at[(m.partition, m.offset)] = id_columns(batches.decode(m.value))[0]
            except (CodecError, ValueError, KeyError):
                self.ids_at[(m.partition, m.offset)] = []  # not a batch: dead-lettered, nothing to count
        async for m in read_range(self.bootstrap, "experiences.dlq", first=dict(self.dlq_next) or None):
            self.dlq_next[m.partition] = m.offset + 1
            letter = letters.decode(m.value)
            if letter["source_topic"] == "experiences":
                self.refused.add((letter["source_partition"], letter["source_offset"]))

    def accepted_ids(self) -> int:
        return len({i for at, ids in self.ids_at.items() if at not in self.refused for i in ids})


async def counted_exactly_once(system, ledger: LogLedger, timeout: float = 60.0) -> tuple[bool, dict]:
    """Hold the fleet, wait for the worker to commit the log's end, compare; the fleet goes on after."""
    from streams.kafka.topics import committed_offsets, end_offsets
    from streams.settings import Settings

    group = Settings().broker.app_id
    system.hold = True
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            ends = await end_offsets(system.broker.bootstrap, "experiences")
            committed = await committed_offsets(system.broker.bootstrap, "experiences", group)
            if all(committed.get(p, 0) >= e for p, e in ends.items()):
                break
            if asyncio.get_running_loop().time() > deadline:
                return False, {"behind": float(sum(max(e - committed.get(p, 0), 0) for p, e in ends.items()))}
            await asyncio.sleep(1.0)
        await ledger.catch_up()
        m = await asyncio.to_thread(system.metrics)
        counted, expected = m.get("metastream_experiences_ingested_total", -1), ledger.accepted_ids()
        return counted == expected, {"counted": counted, "distinct_ids_on_log": float(expected)}
    finally:
        system.hold = False
