"""Drift detection on the stream of prequential losses, with River's detectors, and the part of a
model's state that watches it: which tasks were scored, the era (drift alarms so far), the token
bucket that bounds the scoring work, and the level before and after the last alarm.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from river import drift

from streams.worker.state.dedup import SeenIds

DETECTORS = ("adwin", "pagehinkley")


def make_detector(name: str = "adwin"):
    if name == "adwin":
        return drift.ADWIN(delta=0.002, clock=4)  # check every 4 observations: alarms come sooner
    if name == "pagehinkley":
        return drift.PageHinkley(min_instances=30, delta=0.05, threshold=5.0, mode="up")  # rises only
    raise ValueError(f"unknown drift detector {name!r}; choose one of {', '.join(DETECTORS)}")


def change_levels(values: list[float]) -> tuple[float, float]:
    """Mean loss before and after the most likely change point of ``values`` (the split that
    maximises the standardised difference of the two means, as CUSUM estimates it).

    >>> change_levels([1.0] * 30 + [3.0] * 10)
    (1.0, 3.0)
    """
    x = np.asarray(values, dtype="f8")
    n = len(x)
    if n < 2:
        level = float(x.mean()) if n else float("nan")
        return level, level
    k = np.arange(1, n)
    head = np.cumsum(x)[:-1]
    gap = head / k - (x.sum() - head) / (n - k)
    split = int(k[np.argmax(np.abs(gap) * np.sqrt(k * (n - k) / n))])
    return float(x[:split].mean()), float(x[split:].mean())


@dataclass(frozen=True)
class DriftAlarm:
    """What a detector saw when it fired: the loss level before the change and after it."""

    detector: str
    level_before: float
    level_after: float
    observations: int


class DriftMonitor:
    """Feeds one detector and says when it fires. Only a rise of the loss is a drift: a detector
    also fires when the loss falls (a better version was published), which needs no update.

    >>> monitor = DriftMonitor("adwin")
    >>> alarms = [monitor.update(v) for v in [0.5] * 300 + [1.5] * 60]
    >>> alarm = next(a for a in alarms if a)
    >>> alarm.level_before < 0.6 < 1.4 < alarm.level_after
    True
    """

    def __init__(self, name: str = "adwin") -> None:
        self.name = name
        self.detector = make_detector(name)
        self.observations = 0
        self._since_alarm: deque[float] = deque(maxlen=4096)  # losses since (just before) the last alarm

    def update(self, value: float) -> DriftAlarm | None:
        """Feed one loss; a :class:`DriftAlarm` when the loss rose significantly, else ``None``."""
        self.observations += 1
        self._since_alarm.append(value)
        before = self._estimate()
        self.detector.update(value)
        if not self.detector.drift_detected:
            return None
        after = self._estimate()
        if before is not None and after is not None and after <= before:
            return None
        before_level, after_level = change_levels(list(self._since_alarm))
        alarm = DriftAlarm(self.name, before_level, after_level, self.observations)
        self._since_alarm = deque(list(self._since_alarm)[-20:], maxlen=4096)
        return alarm

    def _estimate(self) -> float | None:
        """The detector's current mean of the loss (ADWIN: of the window it kept)."""
        value = getattr(self.detector, "estimation", None)
        return None if value is None else float(value)

    def mean_now(self) -> float:
        """The detector's mean of the loss, or the last 20 losses' for a detector that keeps none."""
        value = self._estimate()
        return self.level() if value is None else value

    def level(self) -> float:
        """Mean of the last 20 losses (the prequential-loss gauge)."""
        recent = list(self._since_alarm)[-20:]
        return sum(recent) / max(len(recent), 1)


@dataclass
class DriftState:
    """Everything a model's drift watch holds between messages."""

    monitor: DriftMonitor
    era: int = 0  # drift alarms so far: tasks of one era come from one distribution
    pending: list[str] = field(default_factory=list)  # tasks with enough points, not yet scored
    pending_since: float = 0.0  # monotonic time the oldest pending task began to wait
    task_agent: dict[str, str] = field(default_factory=dict)  # the agent that sent each pending task
    scored: SeenIds = field(default_factory=lambda: SeenIds(1_000_000))
    tokens: float = 0.0
    token_time: float = field(default_factory=time.monotonic)
    last_loss: float = float("nan")
    first_drift_ms: int | None = None  # oldest experience of the batch that raised the first unanswered alarm
    alarm_levels: tuple[float, float] | None = None  # that alarm's loss level before and after the change

    def unanswered(self) -> bool:
        """A drift alarm waits for its answer and the loss has not come back: the detector's mean is
        still nearer the level after the change than the level before it. A false alarm in a
        stationary stream (the loss back at its level without any version) waits for nothing.

        >>> state = DriftState(DriftMonitor("adwin"))
        >>> state.unanswered()
        False
        >>> state.first_drift_ms, state.alarm_levels = 1, (1.0, 3.0)
        >>> _ = [state.monitor.update(1.0) for _ in range(100)]
        >>> state.unanswered()
        False
        >>> _ = [state.monitor.update(3.0) for _ in range(100)]
        >>> state.unanswered()
        True
        """
        if self.first_drift_ms is None:
            return False
        if self.alarm_levels is None:
            return True
        before, after = self.alarm_levels
        return not self.monitor.mean_now() <= (before + after) / 2  # a loss that is not a number has not come back

    def refill(self, rate: float) -> None:
        """A token bucket bounds the scoring work (and so its share of the ingest path) at high rates."""
        now = time.monotonic()
        self.tokens = min(rate, self.tokens + (now - self.token_time) * rate)
        self.token_time = now

    def due(self, group: int, window_s: float, now: float | None = None) -> bool:
        """The pending tasks are to be scored now: ``group`` of them wait, or the oldest has waited
        ``window_s`` seconds (scoring in batches keeps the ingest path's torch calls per message low;
        the window bounds how long the drift signal lags)."""
        if not self.pending:
            return False
        return len(self.pending) >= group or (time.monotonic() if now is None else now) - self.pending_since >= window_s

    def take_token(self) -> bool:
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
