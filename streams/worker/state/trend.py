"""Whether a model's score trends down: the champion's error on the newest held-out tasks, as each
update measures it, over a sliding window; the relative change (the newer half of the window
against the older half) is the ``accuracy_trend`` diagnosis rule's signal. Above 5% the rule asks
for a retrain (the seed's rule); once the updates after it bring the error back, the change falls
under the bound and the diagnosis clears.

A rise counts only when it stands out of the updates' own noise (Welch's t of the two halves above
``min_t``): in a stationary stream the held-out error of a few updates moves by more than 5% half
to half, and a raw 5% fired 10 false alarms in a 20-minute fault-free run."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ScoreTrend:
    """>>> trend = ScoreTrend(window=6, threshold=0.05)
    >>> [trend.add(e) for e in (1.0, 1.02, 0.98, 1.3, 1.32, 1.28)]
    [False, False, False, False, False, True]
    >>> [trend.add(e) for e in (1.0, 1.0, 1.01)], round(trend.change(), 3)  # the retrained versions bring the error back
    ([False, False, False], 0.0)
    >>> noisy = ScoreTrend(window=6)
    >>> [noisy.add(e) for e in (1.0, 1.4, 0.8, 1.3, 0.9, 1.35)][-1]  # 6% up on average, well inside the noise
    False
    """

    window: int = 12
    threshold: float = 0.05
    min_t: float = 3.0
    errors: deque = field(default_factory=deque)

    def add(self, error: float) -> bool:
        """Record one measurement; True when the window is full and the error rose by more than
        ``threshold`` (relative), beyond the noise."""
        if error != error:  # NaN: nothing measured
            return False
        self.errors.append(float(error))
        while len(self.errors) > self.window:
            self.errors.popleft()
        return len(self.errors) >= self.window and self.change() > self.threshold

    def change(self) -> float:
        """Relative change of the mean error, newer half against older half, where the newer half is
        significantly higher; 0 with too few measurements, when it fell, or when the rise is noise."""
        values = np.asarray(self.errors, "f8")
        if len(values) < 4:
            return 0.0
        half = len(values) // 2
        old, new = values[:half], values[half:]
        spread = np.sqrt(old.var(ddof=1) / len(old) + new.var(ddof=1) / len(new))
        rise = new.mean() - old.mean()
        if rise <= 0 or rise < self.min_t * spread:
            return 0.0
        return float(rise / max(abs(old.mean()), 1e-12))
