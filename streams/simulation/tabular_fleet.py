"""A fleet of agents with tabular experience: each task is one agent's small labelled set, ``ways``
classes of a real table with ``per_class`` rows each, labelled ``0 .. ways-1`` in the task's own
order, with a share of values missing (NaN) as an agent's logs would have. After the drift the
fleet's instruments change scale: every column is multiplied by a fixed random factor.

>>> import numpy as np
>>> from learners.tabular.data import Table
>>> X = np.arange(60, dtype="f4").reshape(30, 2); t = Table(X, np.arange(30) % 3, ("a", "b"), "y", (0, 1, 2))
>>> tid, x, y = TabularFleet(t, ways=2, per_class=3, seed=1).sample_task()
>>> tid, x.shape, sorted(set(y[:, 0].tolist()))
('t-1-1', (6, 2), [0.0, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from learners.tabular.data import Table

from streams.simulation.fleet import _Drifting


@dataclass
class TabularFleet(_Drifting):
    table: Table = field(repr=False)
    ways: int = 5
    per_class: int = 10
    missing: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._by_class = [np.flatnonzero(self.table.y == c) for c in range(len(self.table.classes))]
        self._by_class = [rows for rows in self._by_class if len(rows) >= self.per_class]
        if len(self._by_class) < self.ways:
            raise ValueError(f"{self.ways}-way tasks need {self.ways} classes with {self.per_class} rows each")
        self._scale = np.random.default_rng(self.seed + 1).uniform(0.2, 5.0, self.table.X.shape[1]).astype("f4")
        self._start()

    def sample_task(self, drifted: bool | None = None) -> tuple[str, np.ndarray, np.ndarray]:
        """``(task_id, x [ways * per_class, features], y [ways * per_class, 1])``."""
        drifted, number = self._next_task(drifted)
        classes = self._rng.choice(len(self._by_class), self.ways, replace=False)
        pick = np.concatenate([self._rng.choice(self._by_class[c], self.per_class, replace=False) for c in classes])
        x = self.table.X[pick].astype("f4")
        if drifted:
            x = x * self._scale
        if self.missing:
            x = np.where(self._rng.random(x.shape) < self.missing, np.float32(np.nan), x)
        y = np.repeat(np.arange(self.ways, dtype="f4"), self.per_class)[:, None]
        order = self._rng.permutation(len(pick))
        return f"{'d' if drifted else 't'}-{self.seed}-{number}", np.ascontiguousarray(x[order]), y[order]
