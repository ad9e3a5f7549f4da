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
