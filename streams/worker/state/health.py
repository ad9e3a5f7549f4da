"""What the worker watches about itself, for the diagnosis rules: dead letters and who sent them,
consumer lag over time, agents in quarantine, and the diagnoses in force."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Quarantine:
    """An agent's experiences refused from where the worker stood on the log when it was
    quarantined (``positions``: partition -> next offset) until ``release_ms`` on the messages'
    own clock: a replay of the log (a restart, an audit) refuses exactly the same messages.

    >>> q = Quarantine({0: 10}, release_ms=5_000)
    >>> q.covers(0, 9, 1_000), q.covers(0, 10, 1_000), q.covers(0, 10, 5_000), q.covers(1, 0, 1_000)
    (False, True, False, True)
    """

    positions: dict[int, int]
    release_ms: float

    def covers(self, partition: int, offset: int, at_ms: float) -> bool:
        return offset >= self.positions.get(partition, 0) and at_ms < self.release_ms


@dataclass
class Health:
    window_s: float = 30.0
    dead_letters: deque = field(default_factory=lambda: deque(maxlen=100_000))  # (monotonic time, agent id or "")
    lag: deque = field(default_factory=lambda: deque(maxlen=600))  # (monotonic time, total consumer lag)
    quarantine: dict[str, list[Quarantine]] = field(default_factory=dict)  # agent id -> its quarantines
    active: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)  # (rule, model) -> diagnosis
    decisions: deque = field(default_factory=lambda: deque(maxlen=40))  # recent DecisionEvent records, newest last
    agent_losses: dict[str, deque] = field(default_factory=dict)  # agent -> its tasks' recent (few-shot loss, labels are noise)

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

    def note_agent_loss(self, agent_id: str, loss: float, noise: bool = True) -> None:
        """``noise``: the task's labels do not follow from its own inputs (``learners/tasks/coherence.py``)."""
        if agent_id and loss == loss:
            self.agent_losses.setdefault(agent_id, deque(maxlen=40)).append((loss, bool(noise)))
            if len(self.agent_losses) > 10_000:  # bounded: forget an arbitrary old agent
                self.agent_losses.pop(next(iter(self.agent_losses)))

    def loss_outlier(self, min_tasks: int = 20) -> tuple[str | None, float, int]:
        """The agent whose tasks fit nothing: the share of its recent tasks whose loss is above the
        90th percentile of every other agent's *and* whose labels do not follow from their own
        inputs (noise: about 0.1 at most for an agent like the others, near 1 for one sending noise),
        and how many of its tasks were scored. An agent alone in a new regime also fits the champion
        worse than the others, but its tasks are coherent: it is learned from, not quarantined. A
        rank statistic, because task losses are heavy-tailed: a mean or even a median over a few
        tasks of a clean agent can sit several times above the fleet's by chance."""
        eligible = [a for a, v in self.agent_losses.items() if len(v) >= min_tasks]
        if len(self.agent_losses) < 3 or not eligible:
            return None, 0.0, 0
        pooled = {a: np.asarray(v, "f8").reshape(-1, 2) for a, v in self.agent_losses.items()}
        best, best_share = None, 0.0
        for agent in eligible:
            others = np.concatenate([v[:, 0] for a, v in pooled.items() if a != agent])
            if len(others) < 50:
                continue
            mine = pooled[agent]
            share = float(np.mean((mine[:, 0] > np.percentile(others, 90)) & (mine[:, 1] > 0)))
            if share > best_share:
                best, best_share = agent, share
        return best, best_share, len(self.agent_losses[best]) if best else 0

    def note_lag(self, lag: float) -> None:
        self.lag.append((time.monotonic(), lag))

    def lag_growth_per_s(self) -> float:
        cutoff = time.monotonic() - self.window_s
        samples = [(t, v) for t, v in self.lag if t >= cutoff]
        if len(samples) < 2 or samples[-1][0] - samples[0][0] < 1:
            return 0.0
        return (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])

    def add_quarantine(self, agent_id: str, q: Quarantine) -> None:
        self.agent_losses.pop(agent_id, None)  # judged: its old losses must not name it again over the next noisy agent
        spells = self.quarantine.setdefault(agent_id, [])
        if q not in spells:
            spells.append(q)

    def quarantined(self, agent_id: str, partition: int = 0, offset: int = 2**62, at_ms: float | None = None) -> bool:
        """Whether ``agent_id``'s message at ``partition``/``offset``, stamped ``at_ms`` (default:
        now), falls in one of its quarantines."""
        spells = self.quarantine.get(agent_id)
        if not spells:
            return False
        at = time.time() * 1000 if at_ms is None else at_ms
        return any(q.covers(partition, offset, at) for q in spells)

    def in_quarantine(self, now_ms: float | None = None) -> int:
        """Agents in quarantine now; forgets spells that are over."""
        now = time.time() * 1000 if now_ms is None else now_ms
        for agent in list(self.quarantine):
            self.quarantine[agent] = [q for q in self.quarantine[agent] if q.release_ms > now]
            if not self.quarantine[agent]:
                del self.quarantine[agent]
        return len(self.quarantine)
