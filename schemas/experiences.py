"""ExperienceBatch records from and to numpy columns: the columnar layout is what makes a batch of
64 experiences decode in microseconds (one ``frombuffer`` per column, no per-field work). Since
schema v4 the id columns are columnar too: ids joined by newlines and timestamps as int64 bytes
(decoding three Avro arrays of 64 items was half the ingest path's cost).

>>> rec = make_batch_record("sine", np.zeros((2, 1)), np.zeros((2, 1)), ["t1", "t1"], event_ids=["a", "b"],
...                         timestamps_ms=[5, 6])
>>> rec["event_ids"], rec["event_ids_joined"].splitlines()
([], ['a', 'b'])
>>> event_ids, task_ids, stamps = id_columns(rec)
>>> event_ids, task_ids, stamps.tolist()
(['a', 'b'], ['t1', 't1'], [5, 6])
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class ExperienceColumns:
    """A decoded batch: metadata per batch, numeric columns as float32 matrices."""

    model_id: str
    agent_id: str
    agent_type: str
    event_ids: list[str]
    task_ids: list[str]
    timestamps_ms: np.ndarray  # [n] int64, ms since the epoch
    features: np.ndarray  # [n, feature_dim]
    targets: np.ndarray  # [n, target_dim]
    predictions: np.ndarray | None
    losses: np.ndarray | None
    metadata: dict[str, str] | None = None
    model_version: int | None = None  # the version that served these experiences
    latencies: np.ndarray | None = None  # [n] the agent's prediction latency, ms

    def __len__(self) -> int:
        return len(self.event_ids)


def make_batch_record(
    model_id: str,
    features: np.ndarray,
    targets: np.ndarray,
    task_ids: Sequence[str],
    *,
    agent_id: str = "agent-0",
    agent_type: str = "sim",
    event_ids: Sequence[str] | None = None,
    timestamps_ms: Sequence[int] | None = None,
    predictions: np.ndarray | None = None,
    losses: np.ndarray | None = None,
    metadata: dict[str, str] | None = None,
    model_version: int | None = None,
    latencies_ms: np.ndarray | None = None,
) -> dict:
    """The Avro record (a dict) for ``n`` experiences; event ids default to fresh UUIDs."""
    features = np.ascontiguousarray(features, dtype="<f4")
    targets = np.ascontiguousarray(targets, dtype="<f4")
    if features.ndim == 1:
        features = features[:, None]
    if targets.ndim == 1:
        targets = targets[:, None]
    n = features.shape[0]
    now = int(time.time() * 1000)
    ids = list(event_ids) if event_ids is not None else [uuid.uuid4().hex for _ in range(n)]
    tasks = [str(t) for t in task_ids]
    check_ids("event id", ids)
    check_ids("task id", tasks)
    if len(ids) != n or len(tasks) != n:
        raise ValueError(f"{n} experiences need {n} event ids and task ids, got {len(ids)} and {len(tasks)}")
    stamps = np.full(n, now, "<i8") if timestamps_ms is None else np.asarray(timestamps_ms, "<i8")
    if stamps.shape != (n,):
        raise ValueError(f"{n} experiences need {n} timestamps, got shape {stamps.shape}")
    return {
        "model_id": model_id,
        "agent_id": agent_id,
        "agent_type": agent_type,
        "count": n,
        "event_ids": [],
        "task_ids": [],
        "timestamps_ms": [],
        "feature_dim": int(features.shape[1]),
        "features": features.tobytes(),
        "target_dim": int(targets.shape[1]),
        "targets": targets.tobytes(),
        "predictions": b"" if predictions is None else np.ascontiguousarray(predictions, dtype="<f4").tobytes(),
        "losses": b"" if losses is None else np.ascontiguousarray(losses, dtype="<f4").tobytes(),
        "metadata": metadata,
        "model_version": model_version,
        "latencies": b"" if latencies_ms is None else np.ascontiguousarray(latencies_ms, dtype="<f4").tobytes(),
        "timestamps_ms_packed": stamps.tobytes(),
        "event_ids_joined": "\n".join(ids),
        "task_ids_joined": "\n".join(tasks),
    }


def check_ids(name: str, ids: Sequence[str]) -> None:
    """Ids travel joined by newlines: one that holds a newline is refused here, where it is made."""
    bad = next((i for i in ids if "\n" in i), None)
    if bad is not None:
        raise ValueError(f"a {name} may not hold a newline (ids travel joined by newlines): {bad!r}")


def id_columns(record: dict) -> tuple[list[str], list[str], np.ndarray]:
    """The event ids, task ids and timestamps (int64, ms) of a decoded ExperienceBatch, whichever
    schema version wrote it (v4 packs them; v1-v3 hold them as arrays). Checking them against ``count`` (and the
    packed timestamps' byte length) is the reader's job: see ``streams.worker.validation``."""
    packed = record.get("timestamps_ms_packed")
    if not packed:
        return record["event_ids"], record["task_ids"], np.asarray(record["timestamps_ms"], "i8")
    stamps = np.frombuffer(packed[: len(packed) // 8 * 8], "<i8")
    return record["event_ids_joined"].split("\n"), record["task_ids_joined"].split("\n"), stamps


def unpacked(record: dict) -> dict:
    """A decoded ExperienceBatch as a person reads it: the id columns as lists, the packed fields gone."""
    event_ids, task_ids, stamps = id_columns(record)
    out = {k: v for k, v in record.items() if k not in PACKED}
    out.update(event_ids=event_ids, task_ids=task_ids, timestamps_ms=stamps.tolist())
    return out


PACKED = ("timestamps_ms_packed", "event_ids_joined", "task_ids_joined")
