"""Checks a decoded ExperienceBatch before it may touch a learner: shapes, sizes, finite numbers,
known model ids. A failure names its kind (the DLQ reason and metric label) and what was wrong."""

from __future__ import annotations

import numpy as np

from schemas.experiences import ExperienceColumns, id_columns


class Rejected(ValueError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _matrix(raw: bytes, rows: int, cols: int, name: str) -> np.ndarray:
    if cols <= 0:
        raise Rejected("bad_shape", f"{name} width must be positive, got {cols}")
    if len(raw) != rows * cols * 4:
        raise Rejected("bad_shape", f"{name} holds {len(raw)} bytes; {rows}x{cols} float32 needs {rows * cols * 4}")
    return np.frombuffer(raw, dtype="<f4").reshape(rows, cols)


def validate_batch(record: dict, *, known_models: dict[str, tuple[int, int]], max_rows: int,
                   classifiers: frozenset[str] | set[str] = frozenset(),
                   missing_ok: frozenset[str] | set[str] = frozenset()) -> ExperienceColumns:
    """``known_models`` maps model id to its (feature_dim, target_dim); the targets of the models
    in ``classifiers`` are class labels, which must be whole numbers; the features of the models in
    ``missing_ok`` may be NaN (a missing value), never infinite."""
    model_id = record["model_id"]
    if model_id not in known_models:
        raise Rejected("unknown_model", f"unknown model id {model_id!r}; known: {sorted(known_models)}")
    n = record["count"]
    if n <= 0:
        raise Rejected("empty", "a batch must hold at least one experience")
    if n > max_rows:
        raise Rejected("oversize", f"{n} experiences in one batch; at most {max_rows}")
    packed = record.get("timestamps_ms_packed")
    if packed and len(packed) != 8 * n:
        raise Rejected("bad_shape", f"timestamps_ms_packed holds {len(packed)} bytes; {n} int64 need {8 * n}")
    event_ids, task_ids, stamps = id_columns(record)
    for col, values in (("event_ids", event_ids), ("task_ids", task_ids), ("timestamps_ms", stamps)):
        if len(values) != n:
            raise Rejected("bad_shape", f"{col} has {len(values)} entries for {n} experiences")
    fdim, tdim = known_models[model_id]
    if record["feature_dim"] != fdim or record["target_dim"] != tdim:
        raise Rejected("bad_shape", f"model {model_id} takes {fdim} features -> {tdim} targets, got "
                                    f"{record['feature_dim']} -> {record['target_dim']}")
    features = _matrix(record["features"], n, fdim, "features")
    targets = _matrix(record["targets"], n, tdim, "targets")
    preds = _matrix(record["predictions"], n, tdim, "predictions") if record["predictions"] else None
    losses = _matrix(record["losses"], n, 1, "losses")[:, 0] if record["losses"] else None
    latencies = _matrix(record["latencies"], n, 1, "latencies")[:, 0] if record.get("latencies") else None
    version = record.get("model_version")
    if version is not None and version < 0:
        raise Rejected("bad_version", f"model_version must be a published version number (>= 1) or null, got {version}")
    if latencies is not None and not (np.isfinite(latencies).all() and (latencies >= 0).all()):
        raise Rejected("non_finite", "latencies must be finite and >= 0 (ms)")
    usable = np.isfinite(features) | np.isnan(features) if model_id in missing_ok else np.isfinite(features)
    if not (usable.all() and np.isfinite(targets).all()):
        raise Rejected("non_finite", "features hold infinity, or targets NaN or infinity" if model_id in missing_ok
                       else "features or targets hold NaN or infinity")
    if model_id in classifiers and not (np.all(targets == np.round(targets)) and np.all(np.abs(targets) < 2**24)):
        raise Rejected("bad_label", f"model {model_id} classifies: its targets must be whole-number class labels "
                                    f"(below 2^24), got e.g. {targets[targets != np.round(targets)][:3].tolist() or targets.max()}")
    return ExperienceColumns(model_id, record["agent_id"], record["agent_type"], event_ids, task_ids,
                             stamps, features, targets, preds, losses, record.get("metadata"), version, latencies)
