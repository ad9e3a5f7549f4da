"""ExperienceBatch records from and to numpy columns: the columnar layout is what makes a batch of
64 experiences decode in microseconds (one ``frombuffer`` per column, no per-field work)."""

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
    timestamps_ms: list[int]
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
    return {
        "model_id": model_id,
        "agent_id": agent_id,
        "agent_type": agent_type,
        "count": n,
        "event_ids": list(event_ids) if event_ids is not None else [uuid.uuid4().hex for _ in range(n)],
        "task_ids": list(task_ids),
        "timestamps_ms": list(timestamps_ms) if timestamps_ms is not None else [now] * n,
        "feature_dim": int(features.shape[1]),
        "features": features.tobytes(),
        "target_dim": int(targets.shape[1]),
        "targets": targets.tobytes(),
        "predictions": b"" if predictions is None else np.ascontiguousarray(predictions, dtype="<f4").tobytes(),
        "losses": b"" if losses is None else np.ascontiguousarray(losses, dtype="<f4").tobytes(),
        "metadata": metadata,
        "model_version": model_version,
        "latencies": b"" if latencies_ms is None else np.ascontiguousarray(latencies_ms, dtype="<f4").tobytes(),
    }
