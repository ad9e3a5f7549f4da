"""Rebuild a worker's derived state from the log before it consumes: the latest published
version of each model (read from ``models``), and buffers, detectors and de-duplication state
(replaying ``experiences`` from the start up to the group's committed offsets)."""

from __future__ import annotations

import hashlib

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import AvroCodec

from .ingest import Ingestor

MODEL_VERSIONS = AvroCodec("ModelVersion")


async def _read_range(bootstrap: str, topic: str, stops: dict[int, int] | None, group: str | None = None,
                      idle_ms: int = 600):
    """Yield messages of ``topic`` from the beginning up to ``stops`` (partition -> offset, exclusive),
    or, with ``stops=None``, until no message has arrived for ``idle_ms``.

    The end is found by reading rather than from ListOffsets: the embedded broker reports a high
    watermark that can lag the records it serves, and reading is right on any broker.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        todo = {p for p in parts if stops is None or stops.get(p, 0) > 0}
        while todo:
            batch = await consumer.getmany(*[TopicPartition(topic, p) for p in todo], timeout_ms=idle_ms, max_records=2000)
            if not batch and stops is None:
                return
            for tp, msgs in batch.items():
                for msg in msgs:
                    if stops is not None and msg.offset >= stops[tp.partition]:
                        todo.discard(tp.partition)
                        break
                    yield msg
                if stops is not None and msgs and msgs[-1].offset + 1 >= stops[tp.partition]:
                    todo.discard(tp.partition)
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        out = {}
        for p in sorted(consumer.partitions_for_topic(topic) or ()):
            c = await consumer.committed(TopicPartition(topic, p))
            out[p] = c or 0
        return out
    finally:
        await consumer.stop()


async def rebuild_state(ingestor: Ingestor, bootstrap: str, group: str) -> dict[str, int]:
    """Returns counts of what was replayed."""
    s = ingestor.settings
    versions = 0
    async for msg in _read_range(bootstrap, s.models_topic, None):
        try:
            rec = MODEL_VERSIONS.decode(msg.value)
        except Exception:  # noqa: BLE001 - a bad record on models is skipped, never loaded
            continue
        state = ingestor.models.get(rec["model_id"])
        if state is None or rec["version"] <= state.version:
            continue
        if hashlib.sha256(rec["weights"]).hexdigest() != rec["sha256"]:
            continue
        state.learner.load_weights(rec["weights"])
        state.version = rec["version"]
        for name, points in rec["metrics"].items():  # the forgetting guard's best scores per era
            if name.startswith("era_") and name.endswith("_points"):
                era = int(name.split("_")[1])
                state.best[era] = max(state.best.get(era, -float("inf")), points)
        versions += 1
    stops = await committed_offsets(bootstrap, s.experiences_topic, group)
    messages = 0
    async for msg in _read_range(bootstrap, s.experiences_topic, stops):
        ingestor.ingest(msg.value, msg.key, msg.topic, msg.partition, msg.offset, replay=True)
        messages += 1
    for state in ingestor.models.values():
        state.new_tasks = 0
    return {"versions": versions, "messages": messages}
