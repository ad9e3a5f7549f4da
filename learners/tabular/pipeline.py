"""A feature pipeline that is data: which steps run, and the statistics they fitted, as arrays that
ship with a model version (safetensors) beside a JSON spec, so a consumer applies exactly what the
worker applied and nobody re-implements preprocessing.

Order: signed log of skewed columns -> missing-value indicators -> impute with the running mean ->
running standardisation -> pairwise products of chosen columns -> keep the selected columns.
Standardisation statistics keep updating as rows stream in (:meth:`FeaturePipeline.update`).

>>> X = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 8.0]], np.float32)
>>> p = FeaturePipeline.fit(X, (Step.MISSING, Step.STANDARDISE))
>>> p.output_names(("a", "b"))
('a', 'b', 'b missing')
>>> np.round(p.transform(X).astype(float), 2).tolist()
[[-1.0, 0.0, 1.15], [0.0, -0.71, -0.58], [1.0, 0.71, -0.58]]
>>> FeaturePipeline.from_arrays(p.spec(), p.arrays()).transform(X).tolist() == p.transform(X).tolist()
True
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

import numpy as np

LIMIT = 1e12  # larger magnitudes are capped: their squares must stay finite in the running variance
SKEW_THRESHOLD = 1.0  # |skewness| above which a column gets the signed log


class Step(str, enum.Enum):
    """The steps a pipeline may hold; the value is what the JSON spec says."""

    LOG = "log"
    MISSING = "missing"
    STANDARDISE = "standardise"
    PRODUCTS = "products"
    SELECT = "select"


def skewed_columns(X: np.ndarray) -> np.ndarray:
    """Columns whose sample skewness exceeds :data:`SKEW_THRESHOLD` in absolute value."""
    X = np.clip(np.where(np.isfinite(X), X, np.nan), -LIMIT, LIMIT).astype(np.float64)
    seen = (~np.isnan(X)).sum(0)
    mean = np.nansum(X, 0) / np.maximum(seen, 1)
    std = np.sqrt(np.nansum((X - mean) ** 2, 0) / np.maximum(seen, 1))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        skew = np.nansum(((X - mean) / np.where(std > 0, std, 1)) ** 3, 0) / np.maximum(seen, 1)
    return np.nan_to_num(np.abs(skew)) > SKEW_THRESHOLD


@dataclass
class FeaturePipeline:
    """Fitted steps. ``count``/``mean``/``m2``: running statistics (Welford) of the features before
    standardisation; ``pairs``: indices of multiplied features; ``keep``: the selected outputs."""

    steps: tuple[Step, ...]
    inputs: int
    log_cols: np.ndarray
    missing_cols: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    keep: np.ndarray | None = None

    @classmethod
    def fit(cls, X: np.ndarray, steps: tuple[Step, ...] = (Step.STANDARDISE,), pairs: np.ndarray | None = None,
            keep: np.ndarray | None = None) -> "FeaturePipeline":
        """Fit on rows ``X`` (NaN = missing). ``pairs`` and ``keep`` come from importance (see
        :mod:`learners.tabular.gate`) and only count when their step is in ``steps``."""
        X = np.asarray(X, np.float32)
        d = X.shape[1]
        log_cols = skewed_columns(X) if Step.LOG in steps else np.zeros(d, bool)
        missing = np.flatnonzero(np.isnan(X).any(0)) if Step.MISSING in steps else np.zeros(0, np.int64)
        width = d + len(missing)
        p = cls(tuple(steps), d, log_cols, missing.astype(np.int64), np.zeros(width), np.zeros(width), np.zeros(width))
        p.update(X)
        if Step.PRODUCTS in steps and pairs is not None:
            p.pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        if Step.SELECT in steps and keep is not None:
            p.keep = np.asarray(keep, bool)
        return p

    def _base(self, X: np.ndarray) -> np.ndarray:
        """Log and missing indicators: the features the running statistics describe. An infinite
        value counts as missing and magnitudes are capped at :data:`LIMIT`, so one hostile row
        cannot poison the running statistics for every row after it."""
        X = np.asarray(X, np.float64)
        if X.ndim != 2 or X.shape[1] != self.inputs:
            raise ValueError(f"expected rows of {self.inputs} features, got shape {X.shape}")
        X = np.clip(np.where(np.isfinite(X), X, np.nan), -LIMIT, LIMIT)
        if self.log_cols.any():
            X[:, self.log_cols] = np.sign(X[:, self.log_cols]) * np.log1p(np.abs(X[:, self.log_cols]))
        if len(self.missing_cols):
            X = np.concatenate([X, np.isnan(X[:, self.missing_cols]).astype(np.float64)], 1)
        return X

    def update(self, X: np.ndarray) -> None:
        """Fold rows into the running mean and variance (missing values are skipped)."""
        B = self._base(X)
        seen = ~np.isnan(B)
        n = seen.sum(0)
        if not n.any():
            return
        batch_mean = np.where(n > 0, np.nansum(B, 0) / np.maximum(n, 1), 0.0)
        batch_m2 = np.nansum(np.where(seen, (B - batch_mean) ** 2, 0.0), 0)
        total = self.count + n
        delta = batch_mean - self.mean
        safe = np.maximum(total, 1)
        self.mean = self.mean + delta * n / safe
        self.m2 = self.m2 + batch_m2 + delta ** 2 * self.count * n / safe
        self.count = total

    def transform(self, X: np.ndarray) -> np.ndarray:
        B = self._base(X)
        B = np.where(np.isnan(B), self.mean, B)
        if Step.STANDARDISE in self.steps:
            std = np.sqrt(self.m2 / np.maximum(self.count - 1, 1))
            B = (B - self.mean) / np.where(std > 1e-8, std, 1.0)
        if len(self.pairs):
            B = np.concatenate([B, B[:, self.pairs[:, 0]] * B[:, self.pairs[:, 1]]], 1)
        if self.keep is not None:
            B = B[:, self.keep]
        return np.clip(np.nan_to_num(B.astype(np.float32)), -1e6, 1e6)

    def output_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        out = list(names) + [f"{names[i]} missing" for i in self.missing_cols]
        out = [f"log {n}" if i < self.inputs and self.log_cols[i] else n for i, n in enumerate(out)]
        out += [f"{out[a]} * {out[b]}" for a, b in self.pairs]
        return tuple(n for n, k in zip(out, self.keep if self.keep is not None else [True] * len(out)) if k)

    @property
    def width(self) -> int:
        """Features out of :meth:`transform`."""
        full = self.inputs + len(self.missing_cols) + len(self.pairs)
        return int(self.keep.sum()) if self.keep is not None else full

    def spec(self) -> dict:
        return {"steps": [s.value for s in self.steps], "inputs": self.inputs}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"log_cols": self.log_cols.astype(np.uint8), "missing_cols": self.missing_cols, "count": self.count,
               "mean": self.mean, "m2": self.m2, "pairs": self.pairs}
        if self.keep is not None:
            out["keep"] = self.keep.astype(np.uint8)
        return {k: np.ascontiguousarray(v) for k, v in out.items()}

    @classmethod
    def from_arrays(cls, spec: dict, arrays: dict[str, np.ndarray]) -> "FeaturePipeline":
        keep = arrays.get("keep")
        return cls(tuple(Step(s) for s in spec["steps"]), int(spec["inputs"]), arrays["log_cols"].astype(bool),
                   arrays["missing_cols"].astype(np.int64), arrays["count"].astype(np.float64),
                   arrays["mean"].astype(np.float64), arrays["m2"].astype(np.float64),
                   arrays["pairs"].astype(np.int64).reshape(-1, 2), None if keep is None else keep.astype(bool))

    def copy(self) -> "FeaturePipeline":
        return replace(self, count=self.count.copy(), mean=self.mean.copy(), m2=self.m2.copy())
