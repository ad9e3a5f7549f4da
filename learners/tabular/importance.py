"""Permutation importance: how much a fitted model's held-out score drops when one column's values
are shuffled among the rows. It needs nothing from the model but predictions, so it ranks features
for every candidate family alike (Breiman's idea, as in scikit-learn's ``permutation_importance``).

>>> import numpy as np
>>> class FirstColumn:
...     outputs = 2
...     def predict_many(self, X): return (X[:, 0] > 0).astype(int)
>>> X = np.array([[-1.0, 5.0], [1.0, 5.0], [-2.0, 4.0], [2.0, 4.0]] * 10)
>>> imp = permutation_importance(FirstColumn(), X, (X[:, 0] > 0).astype(int), seed=0)
>>> bool(imp[0] > 0.2), float(imp[1])
(True, 0.0)
"""

from __future__ import annotations

import numpy as np


def score(model, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy for a classifier, minus the mean squared error for a regressor: higher is better."""
    pred = model.predict_many(X)
    return float((pred == y).mean()) if model.outputs else -float(((pred - y) ** 2).mean())


def permutation_importance(model, X: np.ndarray, y: np.ndarray, repeats: int = 3, seed: int = 0) -> np.ndarray:
    """Mean score drop per column over ``repeats`` seeded shuffles."""
    gen = np.random.default_rng(seed)
    base = score(model, X, y)
    out = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        drops = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, j] = shuffled[gen.permutation(len(X)), j]
            drops.append(base - score(model, shuffled, y))
        out[j] = np.mean(drops)
    return out


def task_permutation_importance(learner, batch, kind: str, seed: int = 0) -> np.ndarray:
    """Permutation importance for a few-shot learner: each column of the query rows is shuffled
    among all query rows of ``batch`` (a :class:`~learners.tasks.base.TaskBatch`) and the drop in
    the mean post-adaptation score (accuracy; minus MSE for regression) is that column's importance.
    The support rows stay intact, so it measures what the adapted model relies on."""
    import torch

    from ..base import task_score

    def mean_score(query_x) -> float:
        with torch.no_grad():
            out = learner.predict_tasks(adapted, query_x)
            value = task_score(kind, out, batch.query_y).mean()
        return float(value) if kind == "classification" else -float(value)

    adapted = learner.adapt_tasks(batch.support_x, batch.support_y)
    base = mean_score(batch.query_x)
    gen = torch.Generator().manual_seed(seed)
    flat = batch.query_x.reshape(-1, batch.query_x.shape[-1])
    out = np.zeros(flat.shape[1])
    for j in range(flat.shape[1]):
        shuffled = flat.clone()
        shuffled[:, j] = flat[torch.randperm(len(flat), generator=gen), j]
        out[j] = base - mean_score(shuffled.reshape(batch.query_x.shape))
    return out
