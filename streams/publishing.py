"""Records a worker writes: ModelVersion and DecisionEvent, encoded with the Avro codec."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from schemas import AvroCodec

MODEL_VERSIONS = AvroCodec("ModelVersion")
DECISIONS = AvroCodec("DecisionEvent")


def now_ms() -> int:
    return int(time.time() * 1000)


def decision(event_type: str, model_id: str, reason: str, figures: dict[str, float], version: int | None = None) -> bytes:
    return DECISIONS.encode({"event_type": event_type, "model_id": model_id, "version": version, "timestamp_ms": now_ms(),
                             "reason": reason, "figures": {k: float(v) for k, v in figures.items()}})


def model_version(model_id: str, version: int, parent: int | None, algorithm: str, weights: bytes, config: dict[str, Any],
                  metrics: dict[str, float], lineage: list[dict[str, Any]], stage: str = "PRODUCTION") -> bytes:
    return MODEL_VERSIONS.encode({
        "model_id": model_id, "version": version, "parent_version": parent, "algorithm": algorithm,
        "created_at_ms": now_ms(), "weights": weights, "sha256": hashlib.sha256(weights).hexdigest(),
        "config_json": json.dumps(config, sort_keys=True), "metrics": {k: float(v) for k, v in metrics.items()},
        "lineage": lineage, "rollout_stage": stage,
    })
