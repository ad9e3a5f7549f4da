"""Whether a model's score trends down: the champion's error on the newest held-out tasks, as each
update measures it, over a sliding window; the relative change (the newer half of the window
against the older half) is the ``accuracy_trend`` diagnosis rule's signal. Above 5% the rule asks
for a retrain (the seed's rule); once the updates after it bring the error back, the change falls
under the bound and the diagnosis clears.

A rise counts only when it stands out of the updates' own noise (Welch's t of the two halves above
``min_t``): in a stationary stream the held-out error of a few updates moves by more than 5% half
to half, and a raw 5% fired 10 false alarms in a 20-minute fault-free run. The test runs on the
log of the errors (held-out MSEs are skewed: one hard task in 16 moves a mean by half; on the log
scale the halves' spreads are alike, as Welch's test assumes), and the change it reports is the
ratio of the halves' geometric means less one.

Two updates that finish close together measure the champion on mostly the same newest tasks: their
errors are one measurement, not two. Counting them twice shrank the spread the test divides by, and
a fault-free run fired the rule (a trace of 130 measurements: 2 alarms; with such measurements
folded together, none). The window (16 measurements, ``METASTREAM_SEARCH_WINDOW``) and ``min_t``
(3.5, ``METASTREAM_SEARCH_TREND_T``) were chosen on that trace and on simulated lognormal errors of its spread (sd 0.35 on the
log scale): about 0.16 firing windows per 100 fault-free measurements, and a doubling of the error
found after a median 8 measurements, a quadrupling after 6 (a window of 6 with t >= 3, as before:
2.1 per 100). The held-out tasks are every other one of the ``2 x heldout`` newest, so a
measurement whose buffer saw fewer than ``fresh`` (the worker's ``heldout``) new tasks since the
last one's shares more than half its held-out tasks with it: it is folded into it (their mean)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


FLOOR = 1e-3  # errors below it count as it on the log scale (an accuracy of 100% falling to 95% is a rise)


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
    >>> folded = ScoreTrend(window=6, fresh=32)
    >>> [folded.add(e, seen) for e, seen in ((1.0, 100), (1.2, 110), (1.1, 140))], list(folded.errors)  # 10 new tasks: the same measurement
    ([False, False, False], [1.1, 1.1])
    """

    window: int = 16
    threshold: float = 0.05
    min_t: float = 3.5
    fresh: int = 0  # new tasks a measurement needs to count as a new one (0: every one does)
    errors: deque = field(default_factory=deque)
    _folded: list = field(default_factory=list)  # the measurements the newest entry is the mean of
    _seen: int | None = None  # the buffer's tasks seen at the newest entry's first measurement

    def add(self, error: float, seen: int | None = None) -> bool:
        """Record one measurement (``seen``: the buffer's count of tasks ever seen when it was made);
        True when the window is full and the error rose by more than ``threshold`` (relative),
        beyond the noise."""
        if error != error:  # NaN: nothing measured
            return False
        error = max(float(error), FLOOR)  # a perfect score still has a logarithm
        if seen is not None and self._seen is not None and self.errors and seen - self._seen < self.fresh:
            self._folded.append(float(error))
            self.errors[-1] = float(np.mean(self._folded))
        else:
            self._folded, self._seen = [float(error)], seen
            self.errors.append(float(error))
        while len(self.errors) > self.window:
            self.errors.popleft()
        return len(self.errors) >= self.window and self.change() > self.threshold

    def change(self) -> float:
        """Relative change of the (geometric) mean error, newer half against older half, where the
        newer half is significantly higher; 0 with too few measurements, when it fell, or when the
        rise is noise."""
        values = np.log(np.asarray(self.errors, "f8"))
        if len(values) < 4:
            return 0.0
        half = len(values) // 2
        old, new = values[:half], values[half:]
        spread = np.sqrt(old.var(ddof=1) / len(old) + new.var(ddof=1) / len(new))
        rise = new.mean() - old.mean()
        if rise <= 0 or rise < self.min_t * spread:
            return 0.0
        return float(np.expm1(rise))
