"""The faults the product found and healed, read back from its events (what ``metastream diagnose``
and the status page list): each with when it was found, by which event, and when and how it healed.

- a diagnosis (``DiagnosisMade``) heals with the ``DiagnosisCleared`` of its rule and model;
- a drift (``DriftDetected``) heals with the next version published for a drift, or the routing of
  the regime to a component that knows it (``RegimeRecognised``);
- a faulty version found in its rollout (``RolledBack`` by a test or guardrail) is healed by that
  rollback: it opened when its rollout started;
- a crash (``WorkerRestarted``) opened when the predecessor was last alive and healed once the
  restarted worker rebuilt its state; a lost member (``MemberLost``) healed once its partitions
  were rebuilt here.

>>> from streams.records.wire import Cause, DecisionType as D, decision_record
>>> made = {**decision_record(D.DIAGNOSIS_MADE, Cause.SHRINK, "", "memory_pressure: ...", {}, rule="memory_pressure"), "timestamp_ms": 1000}
>>> gone = {**decision_record(D.DIAGNOSIS_CLEARED, Cause.SHRINK, "", "...", {}, rule="memory_pressure"), "timestamp_ms": 4000}
>>> [(f.kind, f.healed_s) for f in faults_from_events([made, gone])]
[('memory_pressure', 3.0)]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

from streams.records.wire import Cause, DecisionType as D

FAULT_ROLLBACKS = (Cause.SEQUENTIAL_TEST, Cause.LATENCY_GUARDRAIL, Cause.ERROR_GUARDRAIL)


@dataclass
class Fault:
    kind: str  # a diagnosis rule's name, or drift, bad_version, crash, member_lost
    model_id: str
    opened_ms: int  # when the fault began, as far as the product can tell
    found_ms: int  # the event that found it
    found_by: str
    detail: str
    agent_id: str | None = None
    version: int | None = None
    healed_ms: int | None = None  # None: still open
    healed_by: str = ""

    @property
    def found_s(self) -> float:
        """From when it began (as far as the product can tell) to when it was found."""
        return (self.found_ms - self.opened_ms) / 1000

    @property
    def healed_s(self) -> float | None:
        """From when it began to when it healed (None: still open)."""
        return None if self.healed_ms is None else (self.healed_ms - self.opened_ms) / 1000

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "found_s": self.found_s, "healed_s": self.healed_s, "open": self.healed_ms is None}


def faults_from_events(events: Iterable[dict]) -> list[Fault]:
    """Every fault on ``events`` (oldest first), healed or still open."""
    faults: list[Fault] = []
    open_rules: dict[tuple[str, str], Fault] = {}
    open_drifts: dict[str, Fault] = {}
    rollout_start: dict[tuple[str, int], int] = {}
    for e in events:
        kind, at, model = D(e["event_type"]), int(e["timestamp_ms"]), e["model_id"]
        rule = e.get("rule") or e["reason"].split(":")[0]  # records before v8 name the rule in the reason
        if kind is D.DIAGNOSIS_MADE:
            fault = Fault(rule, model, at, at, kind.value, e["reason"], e.get("agent_id"))
            open_rules[(rule, model)] = fault
            faults.append(fault)
        elif kind is D.REMEDIATION_TAKEN and (rule, model) in open_rules:
            open_rules[(rule, model)].detail = e["reason"]  # what was done about it
        elif kind is D.DIAGNOSIS_CLEARED and (rule, model) in open_rules:
            fault = open_rules.pop((rule, model))
            fault.healed_ms, fault.healed_by = at, kind.value
        elif kind is D.DRIFT_DETECTED and model not in open_drifts:
            open_drifts[model] = Fault("drift", model, at, at, kind.value, e["reason"])
            faults.append(open_drifts[model])
        elif model in open_drifts and ((kind is D.VERSION_PUBLISHED and Cause(e["cause"]) is Cause.DRIFT) or kind is D.REGIME_RECOGNISED):
            fault = open_drifts.pop(model)
            fault.healed_ms, fault.healed_by, fault.version = at, kind.value, e["version"]
        elif kind is D.ROLLOUT_STARTED and e["version"] is not None:
            rollout_start[(model, e["version"])] = at
        elif kind is D.ROLLED_BACK and Cause(e["cause"]) in FAULT_ROLLBACKS:
            opened = rollout_start.get((model, e["version"]), at)
            faults.append(Fault("bad_version", model, opened, at, kind.value, e["reason"], version=e["version"], healed_ms=at,
                                healed_by=kind.value))
        elif kind in (D.WORKER_RESTARTED, D.MEMBER_LOST):
            gap = int(e["figures"].get("gap_s", 0.0) * 1000)
            faults.append(Fault("crash" if kind is D.WORKER_RESTARTED else "member_lost", model, at - gap, at, kind.value,
                                e["reason"], healed_ms=at, healed_by=kind.value))
    return faults
