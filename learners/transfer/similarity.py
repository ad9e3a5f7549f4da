"""Similarity between task encodings and the two checks that show it means something: retrieval
precision (do a task's nearest neighbours share its family?) and rank correlation with a known
distance.

>>> import numpy as np
>>> codes = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
>>> precision_at_k(codes, ["a", "a", "b", "b"], k=1)
1.0
>>> round(spearman([1, 2, 3, 4], [10, 20, 30, 35]), 3)
1.0
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def cosine_matrix(codes: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of unit (or any) vectors."""
    unit = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def precision_at_k(codes: np.ndarray, labels: Sequence, k: int = 5) -> float:
    """Mean share of each task's ``k`` most similar other tasks that carry its label."""
    sim = cosine_matrix(codes)
    np.fill_diagonal(sim, -np.inf)
    labels = np.asarray(labels)
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (SciPy's; ties share their mean rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
