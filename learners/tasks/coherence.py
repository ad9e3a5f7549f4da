"""Whether a task's labels follow from its own inputs: the share of label variation a point's
nearest neighbour in the same task explains (leave one out). It tells a task whose labels are noise
(about 0: no point predicts another) from a task of a regime the model has not learned yet (a sine
of double frequency, 40 points: about 0.94; 5-way MNIST with 5 images a class: about 0.65), with no
model at all, so a champion that fits neither says nothing about which one it is.

For regression: ``1 - mean((y - y[nn])^2) / (2 var(y))`` (two independent draws differ by twice the
variance); for classification: the leave-one-out 1-NN accuracy above chance, as a share of the way
from chance to 1.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(-5, 5, (40, 1))
>>> round(label_coherence(x, 3 * np.sin(2 * x), "regression"), 2) > 0.8
True
>>> abs(label_coherence(x, rng.normal(0, 3, (40, 1)), "regression")) < 0.3
True
>>> label_coherence(np.eye(4), np.array([0, 0, 0, 0]), "classification")  # one class: nothing to tell
nan
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 64  # enough to judge a task; bounds the pairwise distances
INCOHERENT = 0.3  # below: the task's labels are (mostly) noise. Noise gives about 0 (10th-90th
# percentile -0.45..0.3 at 20 points); a sine of triple frequency at 20 points has its 10th at 0.4


def label_coherence(x: np.ndarray, y: np.ndarray, kind: str) -> float:
    """See the module's docstring; NaN when the task cannot tell (under 4 points, constant or
    single-class labels)."""
    x = np.nan_to_num(np.asarray(x, "f8").reshape(len(x), -1))[:MAX_POINTS]
    y = np.asarray(y, "f8").reshape(len(y), -1)[:MAX_POINTS]
    if len(x) < 4:
        return float("nan")
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(1)
    if kind == "classification":
        labels = y[:, 0]
        ways = len(np.unique(labels))
        if ways < 2:
            return float("nan")
        chance = 1.0 / ways
        return float(((labels == labels[nearest]).mean() - chance) / (1.0 - chance))
    spread = float(y.var(0).mean())
    if spread <= 1e-12:
        return float("nan")
    return float(1.0 - ((y - y[nearest]) ** 2).mean() / (2.0 * spread))


def incoherent(x: np.ndarray, y: np.ndarray, kind: str) -> bool:
    """True when the task's labels look like noise (a NaN coherence is not: it could not tell)."""
    c = label_coherence(x, y, kind)
    return c == c and c < INCOHERENT
