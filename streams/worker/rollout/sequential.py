"""A sequential comparison of two versions that stays valid however often it is looked at: the
normal-mixture confidence sequence for a difference of means (the mSPRT of Johari et al., 2017,
inverted; Howard et al., 2021). At every look it gives an interval for ``mean_b - mean_a`` that
holds at all times at once with probability ``1 - alpha``, and an e-value against "no difference"
(its reciprocal, running-minimised, is an always-valid p-value).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = RunningStats(), RunningStats()
>>> a.update_many(rng.normal(1.0, 1.0, 4000)); b.update_many(rng.normal(1.3, 1.0, 4000))
>>> result = compare(a, b, alpha=0.05, tau=0.1)
>>> result.low > 0 and result.e_value > 20
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class RunningStats:
    """Count, mean and sum of squared deviations (Welford), merged in batches."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update_many(self, values) -> None:
        v = np.asarray(values, dtype="f8")
        v = v[np.isfinite(v)]
        if not len(v):
            return
        n_b, mean_b = len(v), float(v.mean())
        m2_b = float(((v - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta**2 * self.n * n_b / n
        self.n = n

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "mean": self.mean, "m2": self.m2}


@dataclass(frozen=True)
class Comparison:
    """``mean_b - mean_a``: the estimate, the always-valid interval ``[low, high]``, the e-value
    against no difference, and the sample sizes."""

    estimate: float
    low: float
    high: float
    e_value: float
    n_a: int
    n_b: int

    @property
    def p_value(self) -> float:
        return min(1.0, 1.0 / self.e_value) if self.e_value > 0 else 1.0


def effect_scale(a: RunningStats, b: RunningStats) -> float:
    """The mixture's scale for comparing ``a`` and ``b``: a tenth of the wider of their spreads.
    Scaled to the wider one, not to the first alone: a version whose losses spread ten times wider
    than the champion's (a bad canary) leaves the difference's noise far above a scale taken from
    the champion, and the interval then needs ten times the rows to exclude 0 (measured on lognormal
    losses like the sine fleet's, a canary 27x worse: 34 rows against 338).

    >>> a, b = RunningStats(), RunningStats()
    >>> a.update_many([1.0, 3.0]); b.update_many([0.0, 20.0])
    >>> round(effect_scale(a, b), 3)
    1.414
    """
    spreads = [s.variance ** 0.5 for s in (a, b) if s.n > 1]
    return max(0.1 * max(spreads, default=1.0), 1e-6)


def compare(a: RunningStats, b: RunningStats, alpha: float = 0.05, tau: float = 0.1) -> Comparison:
    """``tau``: the standard deviation of the mixture over effects (the effect size one expects to
    see; the interval is tightest for effects near it)."""
    if a.n < 2 or b.n < 2:
        return Comparison(float("nan"), -math.inf, math.inf, 1.0, a.n, b.n)
    return _interval(b.mean - a.mean, a.variance / a.n + b.variance / b.n, alpha, tau, a.n, b.n)


def compare_paired(diffs: RunningStats, alpha: float = 0.05, tau: float = 0.1) -> Comparison:
    """The same interval for the mean of paired differences (``b - a`` measured on the same units):
    the pairing removes what the units share (a hard task is hard for both), so it needs far fewer
    of them than :func:`compare`.

    >>> d = RunningStats(); d.update_many(np.full(50, 0.3) + np.random.default_rng(0).normal(0, 0.05, 50))
    >>> r = compare_paired(d, 0.05, 0.1); r.low > 0.2, r.n_a
    (True, 50)
    """
    if diffs.n < 2:
        return Comparison(float("nan"), -math.inf, math.inf, 1.0, diffs.n, diffs.n)
    return _interval(diffs.mean, diffs.variance / diffs.n, alpha, tau, diffs.n, diffs.n)


def _interval(diff: float, v: float, alpha: float, tau: float, n_a: int, n_b: int) -> Comparison:
    """``diff`` an estimate with variance ``v``: the normal-mixture confidence sequence around it."""
    v = max(v, 1e-12)
    t2 = tau * tau
    radius = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))
    log_e = 0.5 * math.log(v / (v + t2)) + t2 * diff * diff / (2 * v * (v + t2))
    return Comparison(diff, diff - radius, diff + radius, math.exp(min(log_e, 700.0)), n_a, n_b)
