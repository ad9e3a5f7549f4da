"""Rebuild a worker's derived state from the log before it consumes: the latest published
version of each model (read from ``models``, with each era's best score from its ``era_points``),
and buffers, detectors and de-duplication state (replaying ``experiences`` from the start up to
the group's committed offsets)."""

from __future__ import annotations

import hashlib

from .ingest import Ingestor
from .settings import Settings
from .state import WorkerState
from .topics import committed_offsets, read_range, read_records


async def rebuild_state(state: WorkerState, ingestor: Ingestor, settings: Settings, bootstrap: str) -> dict[str, int]:
    """Returns counts of what was replayed."""
    versions = 0
    for _, rec in await read_records(bootstrap, settings.models_topic, "ModelVersion"):
        model = state.models.get(rec["model_id"])
        if model is None or rec["version"] <= model.version:
            continue
        if hashlib.sha256(rec["weights"]).hexdigest() != rec["sha256"]:
            continue  # never load what does not match its hash
        model.learner.load_weights(rec["weights"])
        model.version = rec["version"]
        model.guard.record_best({e["era"]: e["points"] for e in rec["era_points"]})
        versions += 1
    stops = await committed_offsets(bootstrap, settings.experiences_topic, settings.app_id)
    messages = 0
    async for msg in read_range(bootstrap, settings.experiences_topic, stops):
        ingestor.ingest(msg.value, msg.key, msg.topic, msg.partition, msg.offset, replay=True)
        messages += 1
    for model in state.models.values():
        model.new_tasks = 0
    return {"versions": versions, "messages": messages}
