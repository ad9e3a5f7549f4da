"""Diagnosis rules as data (``rules.json`` ships the defaults; ``METASTREAM_DIAGNOSIS_RULES`` names
a file of one's own): a signal, a bound it must cross (for at least ``for_s`` seconds), the action
that remedies it, and how long to wait before diagnosing it again.

>>> rules = load_rules()
>>> [r.name for r in rules][:3]
['accuracy_trend', 'slow_inference', 'memory_pressure']
>>> rules[0].crossed(0.08), rules[0].crossed(0.01)
(True, False)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from learners.errors import ConfigError

DEFAULT_RULES = Path(__file__).with_name("rules.json")
class Signal(str, Enum):
    """What a rule watches (``signals.py`` computes each)."""

    SCORE_TREND = "score_trend"
    P95_LATENCY_MS = "p95_latency_ms"
    MEMORY_SHARE = "memory_share"
    DLQ_PER_S = "dlq_per_s"
    TOP_AGENT_REJECTED_SHARE = "top_agent_rejected_share"
    LAG_GROWTH_PER_S = "lag_growth_per_s"
    STUCK_S = "stuck_s"
    AGENT_HIGH_LOSS_SHARE = "agent_high_loss_share"
    BROKER_UNREACHABLE_S = "broker_unreachable_s"  # how long the broker has not answered (``broker_watch.py``)

    def __str__(self) -> str:  # its name where text is built from it (the signal's ``_count`` companion)
        return self.value


SIGNALS = tuple(s.value for s in Signal)


class Action(str, Enum):
    SEARCH = "search"  # a hyperparameter search in the update process; its winner is gated and rolled out
    RETRAIN = "retrain"  # an update on the recent data
    DISTIL = "distil"  # a smaller student distilled from the champion, gated and rolled out
    SHRINK = "shrink"  # the replay buffers evicted to half their bound
    QUARANTINE = "quarantine"  # the agent's experiences go to the dead-letter topic for a while
    ALERT = "alert"  # an event and a metric for a person; nothing else


@dataclass(frozen=True)
class Rule:
    name: str
    signal: Signal
    action: Action
    why: str
    above: float | None = None
    below: float | None = None
    for_s: float = 0.0
    cooldown_s: float = 60.0
    min_count: int = 0
    context_agent: str = "agent_id"  # which agent a quarantine names (the signal's context key)

    def crossed(self, value: float) -> bool:
        if value != value:
            return False
        return (self.above is not None and value > self.above) or (self.below is not None and value < self.below)

    @property
    def bound(self) -> float:
        return self.above if self.above is not None else self.below


def parse_rules(items: list) -> list[Rule]:
    if not isinstance(items, list):
        raise ConfigError("diagnosis rules must be a JSON list of objects")
    rules = []
    for item in items:
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"a diagnosis rule must be an object with a name, not {item!r}")
        name = item["name"]
        if item.get("signal") not in SIGNALS:
            raise ConfigError(f"rule {name!r}: signal must be one of {', '.join(SIGNALS)}, not {item.get('signal')!r}")
        try:
            action = Action(item.get("action"))
        except ValueError:
            raise ConfigError(f"rule {name!r}: action must be one of {', '.join(a.value for a in Action)}") from None
        if (item.get("above") is None) == (item.get("below") is None):
            raise ConfigError(f"rule {name!r}: give exactly one of 'above' and 'below'")
        rules.append(Rule(name, Signal(item["signal"]), action, item.get("why", name), item.get("above"), item.get("below"),
                          float(item.get("for_s", 0.0)), float(item.get("cooldown_s", 60.0)), int(item.get("min_count", 0)),
                          item.get("context_agent", "agent_id")))
    return rules


def load_rules(path: str | Path | None = None) -> list[Rule]:
    path = Path(path) if path else DEFAULT_RULES
    try:
        return parse_rules(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"no diagnosis rules at {path}: set METASTREAM_DIAGNOSIS_RULES to a JSON file of rules") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON ({exc})") from None
