"""Incremental clustering of task encodings, one task at a time as the stream brings them: a task
joins the most similar cluster when its cosine similarity to that cluster's centre reaches
``threshold``, and otherwise starts a cluster of its own (a regime far from every known one);
centres are running means (River's ``stats.Mean`` per cluster and dimension would do the same,
one Python object per number). River's ``cluster`` module was the first choice: its KMeans needs
the number of clusters up front and DBSTREAM re-labels its macro-clusters as it goes, while a
mixture of meta-models needs stable ids and a "far from everything" answer.

>>> import numpy as np
>>> c = OnlineTaskClusters(threshold=0.8)
>>> [c.learn_one(np.array(v, np.float32)) for v in ([1, 0], [0.95, 0.05], [0, 1], [1, 0.02])]
[0, 0, 1, 0]
>>> c.sizes
[3, 1]
"""

from __future__ import annotations

import numpy as np


class OnlineTaskClusters:
    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold
        self.centres: list[np.ndarray] = []
        self.sizes: list[int] = []

    def predict_one(self, code: np.ndarray) -> tuple[int | None, float]:
        """``(nearest cluster, its similarity)``; ``(None, -1)`` before any cluster exists."""
        if not self.centres:
            return None, -1.0
        centres = np.stack(self.centres)
        sims = centres @ code / np.maximum(np.linalg.norm(centres, axis=1) * np.linalg.norm(code), 1e-12)
        best = int(np.argmax(sims))
        return best, float(sims[best])

    def learn_one(self, code: np.ndarray) -> int:
        """Assign ``code`` (and fold it into that centre); a new id when it is far from all."""
        best, sim = self.predict_one(code)
        if best is None or sim < self.threshold:
            self.centres.append(np.asarray(code, np.float64).copy())
            self.sizes.append(1)
            return len(self.centres) - 1
        self.sizes[best] += 1
        self.centres[best] += (code - self.centres[best]) / self.sizes[best]
        return best


def calibrated_threshold(codes: np.ndarray, quantile: float = 0.02) -> float:
    """A joining threshold from tasks of one known regime: the ``quantile`` of their pairwise
    similarities. A new cluster starts from a single task, so task-to-task similarity (not
    similarity to a mean) is what a task of the same regime must reach.

    >>> import numpy as np
    >>> round(calibrated_threshold(np.array([[1, 0], [0.9, 0.1], [0.8, 0.2]], np.float32)), 3)
    0.971
    """
    unit = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    sims = (unit @ unit.T)[np.triu_indices(len(codes), 1)]
    return float(np.quantile(sims, quantile))


def calibrated_centre_threshold(codes: np.ndarray, quantile: float = 0.0) -> float:
    """A joining threshold from tasks of one known regime, as similarity to a centre: the
    ``quantile`` (default the least) of each task's similarity to the mean of the others. A task
    joins a cluster by its centre, and a centre averages away the spread of single tasks, so a
    task-to-task threshold lets tasks of another regime in.

    >>> import numpy as np
    >>> round(calibrated_centre_threshold(np.array([[1, 0], [0.9, 0.1], [0.8, 0.2]], np.float32)), 3)
    0.982
    """
    unit = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    others = unit.sum(0) - unit
    sims = (unit * others).sum(1) / np.maximum(np.linalg.norm(others, axis=1), 1e-12)
    return float(np.quantile(sims, quantile))
