"""What the worker watches about itself, for the diagnosis rules: dead letters and who sent them,
consumer lag over time, agents in quarantine, and the diagnoses in force."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Health:
    window_s: float = 30.0
    dead_letters: deque = field(default_factory=lambda: deque(maxlen=100_000))  # (monotonic time, agent id or "")
    lag: deque = field(default_factory=lambda: deque(maxlen=600))  # (monotonic time, total consumer lag)
    quarantine: dict[str, float] = field(default_factory=dict)  # agent id -> monotonic time it is released
    active: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)  # (rule, model) -> diagnosis
    decisions: deque = field(default_factory=lambda: deque(maxlen=40))  # recent DecisionEvent records, newest last

    def note_dead_letter(self, agent_id: str | None) -> None:
        self.dead_letters.append((time.monotonic(), agent_id or ""))

    def recent_dead_letters(self) -> list[str]:
        cutoff = time.monotonic() - self.window_s
        while self.dead_letters and self.dead_letters[0][0] < cutoff:
            self.dead_letters.popleft()
        return [agent for _, agent in self.dead_letters]

    def dlq_per_s(self) -> float:
        return len(self.recent_dead_letters()) / self.window_s

    def top_rejected_agent(self) -> tuple[str | None, float, int]:
        """The agent that sent most recent dead letters, its share of them, and how many there were."""
        agents = self.recent_dead_letters()
        named = Counter(a for a in agents if a)
        if not named:
            return None, 0.0, len(agents)
        agent, count = named.most_common(1)[0]
        return agent, count / len(agents), len(agents)

    def note_lag(self, lag: float) -> None:
        self.lag.append((time.monotonic(), lag))

    def lag_growth_per_s(self) -> float:
        cutoff = time.monotonic() - self.window_s
        samples = [(t, v) for t, v in self.lag if t >= cutoff]
        if len(samples) < 2 or samples[-1][0] - samples[0][0] < 1:
            return 0.0
        return (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])

    def quarantined(self, agent_id: str) -> bool:
        until = self.quarantine.get(agent_id)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self.quarantine[agent_id]
            return False
        return True
