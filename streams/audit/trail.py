"""The audit trail of one model version, from the log alone: its parent chain back to the first
version, the experience offset ranges it learned from, the config that rebuilds its learner, the
seed of the update that made it, and every decision on ``events`` about it (with their figures).

>>> versions = [{"model_id": "m", "version": 1, "parent_version": None, "created_at_ms": 0, "sha256": "a",
...              "config_json": "{}", "metrics": {"seed": 3.0}, "lineage": [], "key_id": ""},
...             {"model_id": "m", "version": 2, "parent_version": 1, "created_at_ms": 5, "sha256": "b",
...              "config_json": '{"algo": "fomaml"}', "metrics": {"seed": 7.0}, "key_id": "",
...              "lineage": [{"topic": "experiences", "partition": 0, "start_offset": 4, "end_offset": 9}]}]
>>> trail = audit_trail(versions, [], "m", 2)
>>> [link["version"] for link in trail["chain"]], trail["seed"], trail["messages"]
([2, 1], 7, 6)
"""

from __future__ import annotations

import json
from typing import Any


class NotOnTheLog(LookupError):
    """The version asked for was never published (or not on this topic)."""


def audit_trail(versions: list[dict[str, Any]], events: list[dict[str, Any]], model_id: str, version: int) -> dict[str, Any]:
    """Everything the log says about ``model_id`` v``version`` (records as ``read_records`` decodes them)."""
    mine = {r["version"]: r for r in versions if r["model_id"] == model_id}
    if version not in mine:
        known = ", ".join(str(v) for v in sorted(mine)[-10:]) or "none"
        raise NotOnTheLog(f"{model_id} v{version} is not on the models topic (latest versions: {known})")
    record = mine[version]
    chain, seen, at = [], set(), record
    while at is not None and at["version"] not in seen:  # a forged cycle must not loop forever
        seen.add(at["version"])
        chain.append({"version": at["version"], "parent": at["parent_version"], "created_at_ms": at["created_at_ms"],
                      "sha256": at["sha256"], "seed": _seed(at), "signed_by": at.get("key_id") or None,
                      "trigger": "drift" if at["metrics"].get("trigger_drift") else "routine"})
        at = mine.get(at["parent_version"]) if at["parent_version"] is not None else None
    missing = chain[-1]["parent"]
    decisions = [e for e in events if e["model_id"] == model_id and e["version"] == version]
    ranges = list(record["lineage"])
    return {
        "model_id": model_id, "version": version, "chain": chain,
        "chain_complete": missing is None,  # False: an ancestor is not on the topic (retention) or never was
        "lineage": ranges, "messages": sum(r["end_offset"] - r["start_offset"] + 1 for r in ranges),
        "config": json.loads(record["config_json"]), "seed": _seed(record), "metrics": dict(record["metrics"]),
        "decisions": [{"at_ms": e["timestamp_ms"], "type": e["event_type"], "cause": e["cause"], "reason": e["reason"],
                       "figures": e["figures"], "rollout": e.get("rollout"), "ab_test": e.get("ab_test")} for e in sorted(decisions, key=lambda e: e["timestamp_ms"])],
    }


def _seed(record: dict[str, Any]) -> int | None:
    seed = record["metrics"].get("seed")
    return None if seed is None else int(seed)
