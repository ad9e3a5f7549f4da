"""Whether a model's score trends down: the champion's error on the newest held-out tasks, as each
update measures it, over a sliding window. A worsening beyond a relative threshold (the newer half
of the window against the older half) asks for a hyperparameter search."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class ScoreTrend:
    """>>> trend = ScoreTrend(window=4, threshold=0.05)
    >>> [trend.add(e) for e in (1.0, 1.0, 1.2, 1.2)]
    [False, False, False, True]
    >>> trend.change()  # and the window starts afresh after a worsening was reported
    0.0
    """

    window: int = 6
    threshold: float = 0.05
    errors: deque = field(default_factory=deque)
    fired: float = 0.0  # the change that last reported a worsening

    def add(self, error: float) -> bool:
        """Record one measurement; True when the window is full and the error rose by more than
        ``threshold`` (relative)."""
        if error != error:  # NaN: nothing measured
            return False
        self.errors.append(float(error))
        while len(self.errors) > self.window:
            self.errors.popleft()
        if len(self.errors) < self.window or self.change() <= self.threshold:
            return False
        self.fired = self.change()
        self.errors.clear()
        return True

    def change(self) -> float:
        """Relative change of the mean error, newer half against older half (0 with too few)."""
        values = list(self.errors)
        if len(values) < 2:
            return 0.0
        half = len(values) // 2
        old, new = sum(values[:half]) / half, sum(values[half:]) / (len(values) - half)
        return (new - old) / max(abs(old), 1e-12)
