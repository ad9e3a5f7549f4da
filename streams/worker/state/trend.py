"""Whether a model's score trends down: the champion's error on the newest held-out tasks, as each
update measures it, over a sliding window; the relative change (the newer half of the window
against the older half) is the ``accuracy_trend`` diagnosis rule's signal. Above 5% the rule asks
for a retrain (the seed's rule); once the updates after it bring the error back, the change falls
under the bound and the diagnosis clears."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class ScoreTrend:
    """>>> trend = ScoreTrend(window=4, threshold=0.05)
    >>> [trend.add(e) for e in (1.0, 1.0, 1.2, 1.2)]
    [False, False, False, True]
    >>> [trend.add(e) for e in (1.0, 1.0)], round(trend.change(), 3)  # the retrained versions bring the error back
    ([False, False], -0.167)
    """

    window: int = 6
    threshold: float = 0.05
    errors: deque = field(default_factory=deque)

    def add(self, error: float) -> bool:
        """Record one measurement; True when the window is full and the error rose by more than
        ``threshold`` (relative)."""
        if error != error:  # NaN: nothing measured
            return False
        self.errors.append(float(error))
        while len(self.errors) > self.window:
            self.errors.popleft()
        return len(self.errors) >= self.window and self.change() > self.threshold

    def change(self) -> float:
        """Relative change of the mean error, newer half against older half (0 with too few)."""
        values = list(self.errors)
        if len(values) < 2:
            return 0.0
        half = len(values) // 2
        old, new = sum(values[:half]) / half, sum(values[half:]) / (len(values) - half)
        return (new - old) / max(abs(old), 1e-12)
