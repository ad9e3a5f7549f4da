"""Tabular experience as arrays: a :class:`Table` of float features (NaN where a value is missing)
and a target, read from CSV or Parquet, or from River's shipped datasets and drifting generators.

Categorical columns become one-hot columns (up to :data:`MAX_CATEGORIES` values; a column with more
is dropped and named in ``dropped``), so every learner downstream sees numbers only.

>>> import io
>>> t = read_csv(io.StringIO("a,b,colour,y\\n1,,red,yes\\n2,5,blue,no\\n3,6,red,yes\\n"), "y")
>>> t.names, t.classes, t.y.tolist()
(('a', 'b', 'colour=blue', 'colour=red'), ('no', 'yes'), [1, 0, 1])
>>> bool(np.isnan(t.X[0, 1]))
True
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import ConfigError

MAX_CATEGORIES = 20
MISSING = {"", "na", "nan", "null", "none", "?"}


@dataclass(frozen=True)
class Table:
    """Rows of features ``X`` ``[n, d]`` (float32, NaN = missing) and targets ``y``: class ids into
    ``classes`` (classification) or numbers (``classes`` empty: regression)."""

    X: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    target: str
    classes: tuple[Any, ...] = ()
    dropped: tuple[str, ...] = field(default=())

    @property
    def is_classification(self) -> bool:
        return bool(self.classes)

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, idx: slice | np.ndarray) -> "Table":
        return Table(self.X[idx], self.y[idx], self.names, self.target, self.classes, self.dropped)


def to_number(v: Any) -> float | None:
    """``v`` as a float, NaN when missing, ``None`` when it is not a number."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.nan
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    if s.lower() in MISSING:
        return math.nan
    try:
        return float(s)
    except ValueError:
        return None


def from_records(records: list[dict[str, Any]], target: str, classification: bool | None = None) -> Table:
    """Build a :class:`Table` from dict rows; ``classification`` ``None`` guesses from the target
    (non-numeric, or at most 20 distinct integers, means classes)."""
    if not records:
        raise ConfigError("the data has no rows")
    if target not in records[0]:
        raise ConfigError(f"no column {target!r}; the columns are {', '.join(map(str, records[0]))}")
    ys = [r[target] for r in records]
    ny = [to_number(y) for y in ys]
    if gaps := sum(1 for n in ny if n is not None and math.isnan(n)):
        raise ConfigError(f"{gaps} rows have no {target!r}: drop them or fill them in")
    numeric_y = all(n is not None for n in ny)
    if classification is None:
        classification = not numeric_y or (len(set(ys)) <= 20 and all(float(n).is_integer() for n in ny))
    names: list[str] = []
    columns: list[np.ndarray] = []
    dropped: list[str] = []
    for col in (c for c in records[0] if c != target):
        values = [r.get(col) for r in records]
        nums = [to_number(v) for v in values]
        if all(n is not None for n in nums):
            names.append(str(col))
            columns.append(np.asarray(nums, dtype=np.float32))
            continue
        cats = sorted({str(v) for v, n in zip(values, nums) if n is None or not math.isnan(n)})
        if len(cats) > MAX_CATEGORIES:
            dropped.append(str(col))
            continue
        for cat in cats:
            names.append(f"{col}={cat}")
            columns.append(np.asarray([math.nan if (n is not None and math.isnan(n)) else float(str(v) == cat)
                                       for v, n in zip(values, nums)], dtype=np.float32))
    X = np.stack(columns, 1) if columns else np.zeros((len(records), 0), np.float32)
    if classification:
        classes = tuple(sorted(set(ys), key=lambda v: (str(type(v)), v)))
        index = {c: i for i, c in enumerate(classes)}
        y = np.asarray([index[v] for v in ys], dtype=np.int64)
    else:
        classes, y = (), np.asarray(ny, dtype=np.float32)
    return Table(X, y, tuple(names), target, classes, tuple(dropped))


def read_csv(source: str | Path | io.TextIOBase, target: str, classification: bool | None = None) -> Table:
    handle = open(source, newline="") if isinstance(source, (str, Path)) else source
    with handle:
        return from_records(list(csv.DictReader(handle)), target, classification)


def read_table(path: str | Path, target: str, classification: bool | None = None) -> Table:
    """A CSV or Parquet file as a :class:`Table`; the error says what to fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} is not a file: give a CSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
            raise ConfigError("reading Parquet needs pyarrow: pip install pyarrow") from exc
        return from_records(pq.read_table(path).to_pylist(), target, classification)
    return read_csv(path, target, classification)


def from_stream(rows: Iterable[tuple[dict, Any]], target: str = "y", classification: bool = True) -> Table:
    """River's ``(x, y)`` pairs as a :class:`Table`."""
    return from_records([{**{str(k): v for k, v in x.items()}, target: y} for x, y in rows], target, classification)
