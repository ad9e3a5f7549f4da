"""What a worker says about how it came to hold its state: after a crash (``WorkerRestarted``: the
predecessor's mark, the gap, what it replayed) and when it takes over a lost member's partitions
(``MemberLost``). Both are events an audit and the self-healing bench read: a fault found by the
product itself, with its timing."""

from __future__ import annotations

from typing import Any

from streams.records.wire import Cause, DecisionType, decision_record
from streams.worker.recovery.incarnation import Predecessor


def _replayed(counts: dict[str, Any], seconds: float) -> dict[str, float]:
    return {"messages_replayed": float(counts.get("messages", 0)), "from_snapshot": float(counts.get("from_snapshot", 0)),
            "rebuild_s": seconds}


def restart_record(predecessor: Predecessor, counts: dict[str, Any], seconds: float, partitions: list[int]) -> dict[str, Any]:
    """``WorkerRestarted``: the worker before this one (its host and pid) left no clean-shutdown mark.

    >>> r = restart_record(Predecessor("h", 7, 0, 1_000), {"messages": 12, "from_snapshot": 1}, 0.5, [0, 1])
    >>> r["event_type"], r["cause"], r["figures"]["messages_replayed"]
    ('WorkerRestarted', 'crash', 12.0)
    """
    figures = {"gap_s": predecessor.gap_s(), "predecessor_pid": float(predecessor.pid),
               "predecessor_uptime_s": (predecessor.alive_ms - predecessor.started_ms) / 1000, **_replayed(counts, seconds)}
    reason = (f"the worker before this one (pid {predecessor.pid} on {predecessor.host}) stopped without a clean shutdown "
              f"{figures['gap_s']:.1f}s ago; partitions {partitions} rebuilt from the log: {figures['messages_replayed']:.0f} "
              f"messages replayed in {seconds:.1f}s" + (" from a snapshot" if figures["from_snapshot"] else ""))
    return decision_record(DecisionType.WORKER_RESTARTED, Cause.CRASH, "", reason, figures)


def member_lost_record(partitions: list[int], models: list[str], counts: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``MemberLost``: partitions moved to this worker while it kept its own (a member left the group)."""
    figures = {"partitions_taken": float(len(partitions)), "models_taken": float(len(models)), **_replayed(counts, seconds)}
    reason = (f"partitions {partitions} moved to this worker (a member left the group); models {models or 'none'} rebuilt "
              f"from the log: {figures['messages_replayed']:.0f} messages replayed in {seconds:.1f}s")
    return decision_record(DecisionType.MEMBER_LOST, Cause.REBALANCE, "", reason, figures)
