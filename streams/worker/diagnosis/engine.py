"""Evaluate the rules on the worker's signals: a rule fires for a scope (the worker, or one model)
once its signal has stayed past the bound for ``for_s`` seconds, and not again within
``cooldown_s``. What is past its bound now is "in force" (the status page lists it).

>>> from streams.worker.diagnosis.rules import load_rules
>>> engine = Diagnoser(load_rules())
>>> [d.rule.name for d in engine.evaluate({"sine": {"score_trend": 0.2}}, now=0.0)]
['accuracy_trend']
>>> engine.evaluate({"sine": {"score_trend": 0.2}}, now=1.0)  # cooling down
[]
>>> engine.evaluate({"sine": {"score_trend": 0.0}}, now=9.0), [c.open_s for c in engine.take_cleared()]
([], [9.0])
>>> [d.rule.name for d in engine.evaluate({"sine": {"score_trend": 0.2}}, now=10.0)]  # healed, then again: a new fault
['accuracy_trend']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.worker.diagnosis.rules import Action, Rule


@dataclass
class Diagnosis:
    rule: Rule
    model_id: str | None
    value: float
    context: dict[str, Any] = field(default_factory=dict)  # e.g. the agent a rule names

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.name, "model_id": self.model_id, "value": self.value, "why": self.rule.why,
                "action": self.rule.action.value, **{k: v for k, v in self.context.items() if isinstance(v, (str, int, float))}}


@dataclass(frozen=True)
class Cleared:
    """A diagnosis that fired and whose signal is back within its bound: healed."""

    diagnosis: Diagnosis  # as it last fired
    value: float  # the signal now
    open_s: float  # from when it fired to now


class Diagnoser:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._since: dict[tuple[str, str | None], float] = {}
        self._last: dict[tuple, float] = {}  # (rule, scope[, agent]) -> when it last fired
        self.in_force: dict[tuple[str, str | None], Diagnosis] = {}
        self._open: dict[tuple[str, str | None], tuple[Diagnosis, float]] = {}  # fired, not yet back within bound
        self._cleared: list[Cleared] = []

    def evaluate(self, signals: dict[str | None, dict[str, float]], now: float,
                 context: dict[str | None, dict[str, Any]] | None = None) -> list[Diagnosis]:
        """``signals``: scope (``None``: the worker; else a model id) -> signal -> value."""
        fired = []
        for rule in self.rules:
            for scope, values in signals.items():
                if rule.signal not in values:
                    continue
                key, value = (rule.name, scope), float(values[rule.signal])
                extra = (context or {}).get(scope, {})
                enough = extra.get(f"{rule.signal.value}_count", rule.min_count) >= rule.min_count
                if not (rule.crossed(value) and enough):
                    self._since.pop(key, None)
                    self.in_force.pop(key, None)
                    if key in self._open and value == value:  # a signal it cannot read (NaN) clears nothing
                        diagnosis, at = self._open.pop(key)
                        self._cleared.append(Cleared(diagnosis, value, now - at))
                        self._last = {k: t for k, t in self._last.items() if k[:2] != key}  # healed: a new crossing is a new fault
                    continue
                since = self._since.setdefault(key, now)
                diagnosis = Diagnosis(rule, scope, value, dict(extra))
                self.in_force[key] = diagnosis
                # a rule that names an agent cools down per agent: a second noisy agent is not let be for a minute
                cool = (*key, extra.get(rule.context_agent, "")) if rule.action is Action.QUARANTINE else key
                if now - since >= rule.for_s and now - self._last.get(cool, -float("inf")) >= rule.cooldown_s:
                    self._last[cool] = now
                    self._open.setdefault(key, (diagnosis, now))
                    fired.append(diagnosis)
        return fired

    def take_cleared(self) -> list[Cleared]:
        """The diagnoses healed since the last call (each once)."""
        cleared, self._cleared = self._cleared, []
        return cleared
