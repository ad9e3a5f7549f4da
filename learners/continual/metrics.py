"""Accuracy matrix metrics of Lopez-Paz and Ranzato (2017, GEM).

``R[i, j]`` is the test accuracy on task ``j`` after training on tasks ``0..i``; ``b[j]`` is the
accuracy of the untrained model on task ``j``. With ``T`` tasks:

- ACC = mean over j of R[T-1, j]
- BWT = mean over j < T-1 of R[T-1, j] - R[j, j]          (negative: forgetting)
- FWT = mean over j > 0 of R[j-1, j] - b[j]
- forgetting[j] = max over l < T-1 of R[l, j] - R[T-1, j]  (Chaudhry et al. 2018), for j < T-1

Accuracies are fractions in [0, 1] (not percentages); averages are plain, unweighted means over tasks.

>>> import numpy as np
>>> m = accuracy_matrix_metrics(np.array([[0.9, 0.1], [0.7, 0.8]]), np.array([0.1, 0.1]))
>>> round(m.acc, 3), round(m.bwt, 3), round(m.fwt, 3), [round(f, 3) for f in m.forgetting]
(0.75, -0.2, 0.0, [0.2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ContinualMetrics:
    acc: float
    bwt: float
    fwt: float
    forgetting: list[float]

    @property
    def mean_forgetting(self) -> float:
        return float(np.mean(self.forgetting)) if self.forgetting else 0.0


def accuracy_matrix_metrics(R: np.ndarray, baseline: np.ndarray | None = None) -> ContinualMetrics:
    R = np.asarray(R, dtype=float)
    T = R.shape[0]
    if R.shape != (T, T):
        raise ValueError(f"R must be square (tasks x tasks), got {R.shape}")
    acc = float(R[-1].mean())
    bwt = float(np.mean([R[-1, j] - R[j, j] for j in range(T - 1)])) if T > 1 else 0.0
    fwt = float(np.mean([R[j - 1, j] - baseline[j] for j in range(1, T)])) if baseline is not None and T > 1 else float("nan")
    forgetting = [float(R[: T - 1, j].max() - R[-1, j]) for j in range(T - 1)]
    return ContinualMetrics(acc, bwt, fwt, forgetting)
