"""Aliases and rollout state of one model, rebuilt from the decision events on the log, so a
restarted worker, a subscriber and an operator all see the same: the ``champion`` (what agents get
by default), the ``canary`` being rolled out and its share of agents, the ``challenger`` waiting
for its turn, and a running A/B test.

Applying the same events in the same order always gives the same state (the worker applies its
own events as it emits them; everyone else reads them back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.records.wire import ABTestSpec, Cause, DecisionType, RolloutPosition, RolloutStage



@dataclass
class ABTest:
    a: int
    b: int
    split: float  # share of agents (percent, by cohort) on b
    started_ms: int


@dataclass
class Aliases:
    """One model's aliases and rollout stage."""

    champion: int | None = None
    canary: int | None = None
    challenger: int | None = None
    challenger_cause: Cause = Cause.NEW_TASKS  # what the challenger was made for: its rollout's cause
    share: float = 0.0  # percent of agents (by cohort) on the canary
    stage: int = -1  # index into the rollout stages; -1: no rollout
    started_ms: int | None = None
    stage_started_ms: int | None = None
    ab: ABTest | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # the stage changes, newest last (bounded)

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply one DecisionEvent record; True when it changed the aliases."""
        kind = DecisionType(event["event_type"])
        version, figures, at = event["version"], event["figures"], event["timestamp_ms"]
        position = RolloutPosition.of(event) if kind in (DecisionType.ROLLOUT_STARTED, DecisionType.ROLLOUT_ADVANCED) else None
        if kind is DecisionType.ROLLOUT_STARTED:
            self.canary = version
            self.share, self.stage = (0.0, 0) if position is None else (position.share, position.stage)
            self.started_ms = self.stage_started_ms = at
            if self.challenger == version:
                self.challenger = None
        elif kind is DecisionType.ROLLOUT_ADVANCED and version == self.canary and position is not None:
            self.share, self.stage, self.stage_started_ms = position.share, position.stage, at
        elif kind is DecisionType.ROLLOUT_PROMOTED:
            self.champion = version
            if self.challenger == version:  # promoted at once when its turn came
                self.challenger = None
            if version == self.canary:
                self.canary, self.share, self.stage, self.started_ms, self.stage_started_ms = None, 0.0, -1, None, None
        elif kind is DecisionType.ROLLED_BACK and version == self.canary:
            self.canary, self.share, self.stage, self.started_ms, self.stage_started_ms = None, 0.0, -1, None, None
            if event.get("drop_challenger") or figures.get("drop_challenger"):  # figures: before schema v5
                self.challenger = None
        elif kind is DecisionType.CHALLENGER_QUEUED:
            self.challenger = version
            try:
                self.challenger_cause = Cause(event.get("cause"))
            except ValueError:  # a cause this version does not know
                self.challenger_cause = Cause.OTHER
        elif kind is DecisionType.AB_TEST_STARTED and (spec := ABTestSpec.of(event)) is not None:
            self.ab = ABTest(spec.a, spec.b, spec.split, at)
        elif kind is DecisionType.AB_TEST_FINISHED:
            self.ab = None
        else:
            return False
        self.history = (self.history + [{"event": kind.value, "version": version, "share": self.share, "at_ms": at}])[-50:]
        return True

    def version_for(self, cohort: float | None) -> int | None:
        """The version an agent at ``cohort`` (``None``: no agent id) is served."""
        if cohort is not None and self.ab is not None:
            return self.ab.b if cohort < self.ab.split else self.ab.a
        if cohort is not None and self.canary is not None and cohort < self.share:
            return self.canary
        return self.champion

    def to_dict(self) -> dict[str, Any]:
        return {"champion": self.champion, "canary": self.canary, "challenger": self.challenger, "share": self.share,
                "stage": self.stage, "ab": None if self.ab is None else vars(self.ab)}


def aliases_from_events(events: list[dict[str, Any]]) -> dict[str, Aliases]:
    """Every model's aliases after ``events`` (DecisionEvent records, in log order)."""
    out: dict[str, Aliases] = {}
    for event in events:
        out.setdefault(event["model_id"], Aliases()).apply(event)
    return out


RETIRED = "RETIRED"  # a champion that a newer one replaced (no longer served; not a ModelVersion stage)


def version_stages(events: list[dict[str, Any]]) -> dict[str, dict[int, str]]:
    """Where each version of each model stands after ``events`` (DecisionEvent records, in log
    order): ``PRODUCTION`` (the champion), ``CANARY`` (being rolled out), ``ROLLED_BACK``, or
    ``RETIRED`` (an earlier champion). A version no rollout event names keeps the stage it was
    published with.

    >>> events = [{"model_id": "m", "event_type": t, "version": v, "figures": {}, "rollout": {"share": 5.0, "stage": 0},
    ...            "timestamp_ms": 0}
    ...           for t, v in [("RolloutPromoted", 1), ("RolloutStarted", 2), ("RolledBack", 2), ("RolloutStarted", 3),
    ...                        ("RolloutPromoted", 3), ("RolloutStarted", 4)]]
    >>> version_stages(events)["m"]
    {1: 'RETIRED', 2: 'ROLLED_BACK', 3: 'PRODUCTION', 4: 'CANARY'}
    """
    aliases: dict[str, Aliases] = {}
    stages: dict[str, dict[int, str]] = {}
    for event in events:
        model = aliases.setdefault(event["model_id"], Aliases())
        champion, canary = model.champion, model.canary
        if not model.apply(event):
            continue
        named = stages.setdefault(event["model_id"], {})
        if champion is not None and model.champion != champion:
            named[champion] = RETIRED
        if canary is not None and model.canary != canary and canary != model.champion:
            named[canary] = RolloutStage.ROLLED_BACK.value
        if model.canary is not None:
            named[model.canary] = RolloutStage.CANARY.value
        if model.champion is not None:
            named[model.champion] = RolloutStage.PRODUCTION.value
    return stages
