"""Split one task's points into a support and a query set, the way its kind needs it.

Regression: ``shots`` support and ``shots`` query points. Classification (N-way K-shot): ``ways``
classes that each have at least ``2 * shots`` points, ``shots`` of each in the support and
``shots`` of each in the query, relabelled ``0 .. ways-1`` (a producer's labels are only names
within its task). With ``rng`` the points (and classes) are drawn at random; without, the split is
deterministic (the first points of each class, the smallest labels), so two model versions scored
on it differ only by their weights.

>>> import numpy as np
>>> x = np.arange(8, dtype="f4")[:, None]
>>> y = np.array([7, 7, 3, 3, 9, 9, 3, 7], "f4")[:, None]
>>> sx, sy, qx, qy = split_task(x, y, shots=1, kind="classification", ways=2)
>>> sx[:, 0].tolist(), sy.tolist(), qx[:, 0].tolist(), qy.tolist()
([2.0, 0.0], [0, 1], [3.0, 1.0], [0, 1])
>>> split_task(x, y, shots=2, kind="classification", ways=2) is None  # only class 3 and 7 have 3 points
True
"""

from __future__ import annotations

import numpy as np


def points_needed(shots: int, kind: str, ways: int = 1) -> int:
    """The fewest points a task must hold to give a split."""
    return 2 * shots * (ways if kind == "classification" else 1)


def split_task(x: np.ndarray, y: np.ndarray, shots: int, kind: str, ways: int = 1,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(support_x, support_y, query_x, query_y)``, or ``None`` when the task cannot give them.
    Classification labels come back as int64 of shape ``[ways * shots]``; regression targets as given."""
    if kind == "regression":
        if len(x) < 2 * shots:
            return None
        idx = rng.permutation(len(x))[: 2 * shots] if rng is not None else np.arange(2 * shots)
        return x[idx[:shots]], y[idx[:shots]], x[idx[shots:]], y[idx[shots:]]
    labels = np.asarray(y).reshape(len(y), -1)[:, 0]
    classes, counts = np.unique(labels, return_counts=True)
    usable = classes[counts >= 2 * shots]
    if len(usable) < ways:
        return None
    chosen = np.sort(rng.choice(usable, ways, replace=False)) if rng is not None else usable[:ways]
    support, query = [], []
    for c in chosen:
        members = np.flatnonzero(labels == c)
        if rng is not None:
            members = rng.permutation(members)
        support.append(members[:shots])
        query.append(members[shots : 2 * shots])
    s, q = np.concatenate(support), np.concatenate(query)
    names = np.repeat(np.arange(ways, dtype=np.int64), shots)
    return x[s], names, x[q], names.copy()
