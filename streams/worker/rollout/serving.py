"""What production sees of each version: the losses and prediction latencies agents report with
the version that served them (``ExperienceBatch.model_version``), kept per model and version. One
observation is one task an agent met with that version (the mean of its rows' losses): the rows of
a task share one adaptation, so counting them as independent would make every difference look
significant."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from streams.worker.rollout.sequential import RunningStats

LATENCY_WINDOW = 2000  # latest latencies kept per version, for the p95
REPORTERS_KEPT = 10_000  # agents remembered per model (the most recent), to size a canary cohort


LOG_FLOOR = 1e-6  # a loss of 0 (a perfect prediction) is taken as this on the log scale


@dataclass
class VersionStats:
    losses: RunningStats = field(default_factory=RunningStats)
    log_losses: RunningStats = field(default_factory=RunningStats)  # the same on the log scale (a harm that multiplies)
    errors: int = 0  # observations whose reported loss was not a finite number (the agent's prediction failed)
    rows: int = 0  # observations (tasks)
    latencies: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    recent: deque = field(default_factory=lambda: deque(maxlen=120))  # (second, sum of losses, rows) for sparklines

    def record(self, losses: np.ndarray, latencies: np.ndarray | None) -> None:
        finite = np.isfinite(losses)
        self.rows += len(losses)
        self.errors += int((~finite).sum())
        self.losses.update_many(losses[finite])
        self.log_losses.update_many(np.log(np.clip(losses[finite], 0.0, None) + LOG_FLOOR))
        if latencies is not None:
            self.latencies.extend(latencies.tolist())
        if finite.any():
            second = int(time.time())
            if self.recent and self.recent[-1][0] == second:
                _, total, n = self.recent[-1]
                self.recent[-1] = (second, total + float(losses[finite].sum()), n + int(finite.sum()))
            else:
                self.recent.append((second, float(losses[finite].sum()), int(finite.sum())))

    @property
    def error_rate(self) -> float:
        return self.errors / self.rows if self.rows else 0.0

    def p95_latency(self) -> float:
        return float(np.percentile(np.asarray(self.latencies), 95)) if self.latencies else float("nan")

    def median_latency(self) -> float:
        """The typical prediction's latency: what the rollout's guardrail compares. A p95 of a canary's
        few hundred rows (an agent reports one latency for every point of a task, so a few tasks make
        them) is its slowest task or two on a busy machine, against the champion's true p95 over
        thousands: canaries were rolled back at 17-22 ms against 1.4-6.5 ms where the one task cost
        1.65-2.1 times the other measured alone (a mixture's extra components)."""
        return float(np.median(np.asarray(self.latencies))) if self.latencies else float("nan")

    def sparkline(self) -> list[float]:
        return [total / n for _, total, n in self.recent if n]


@dataclass
class ServingStats:
    """Per version of one model: since it was first served, and since the current rollout began."""

    versions: dict[int, VersionStats] = field(default_factory=dict)
    rollout: dict[int, VersionStats] = field(default_factory=dict)  # reset when a rollout or A/B test starts
    stage_rows: dict[int, int] = field(default_factory=dict)  # observations per version since the stage began
    reporters: dict[str, int] = field(default_factory=dict)  # agent id -> when it last reported (ms), oldest first
    reports: deque = field(default_factory=lambda: deque(maxlen=600))  # (second, observations) of every version

    def record(self, version: int, losses: np.ndarray, latencies: np.ndarray | None, in_rollout: bool = True,
               in_stage: bool = True, agent_id: str | None = None, at_ms: float | None = None) -> None:
        """``in_rollout``, ``in_stage``: the rows were served since the current rollout (or A/B
        test), and its current stage, began (a restarted worker replays older rows too).
        ``agent_id`` and ``at_ms`` (when it was served) feed the evidence rate and the agents a
        canary cohort is sized from (:meth:`report_rate`, :meth:`recent_agents`)."""
        self.versions.setdefault(version, VersionStats()).record(losses, latencies)
        if at_ms is not None:
            second = int(at_ms // 1000)
            if self.reports and self.reports[-1][0] == second:
                self.reports[-1] = (second, self.reports[-1][1] + len(losses))
            else:
                self.reports.append((second, len(losses)))
            if agent_id is not None:
                self.reporters.pop(agent_id, None)
                self.reporters[agent_id] = int(at_ms)
                if len(self.reporters) > REPORTERS_KEPT:
                    del self.reporters[next(iter(self.reporters))]
        if in_rollout:
            self.rollout.setdefault(version, VersionStats()).record(losses, latencies)
        if in_rollout and in_stage:
            self.stage_rows[version] = self.stage_rows.get(version, 0) + len(losses)
        if len(self.versions) > 64:  # keep the newest versions only
            for old in sorted(self.versions)[:-64]:
                del self.versions[old]

    def report_rate(self, now_ms: float, window_s: float) -> float:
        """Observations (tasks agents reported a loss of, any version) per second over the last
        ``window_s`` seconds before ``now_ms``.

        >>> s = ServingStats()
        >>> for t in range(10):
        ...     s.record(1, np.ones(4), None, agent_id="a", at_ms=1000 * t)
        >>> s.report_rate(10_000, 5.0)
        4.0
        """
        since = (now_ms - window_s * 1000) // 1000
        return sum(n for second, n in self.reports if second >= since) / window_s

    def recent_agents(self, now_ms: float, window_s: float) -> list[str]:
        """The agents that reported a loss within the last ``window_s`` seconds."""
        since = now_ms - window_s * 1000
        return [agent for agent, at in self.reporters.items() if at >= since]

    def start_rollout(self) -> None:
        self.rollout, self.stage_rows = {}, {}

    def start_stage(self) -> None:
        self.stage_rows = {}
