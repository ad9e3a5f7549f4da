"""Re-read a range of a topic, decoded to JSON lines, for audits and rebuilds."""

from __future__ import annotations

import base64
import hashlib
import json
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import AvroCodec, CodecError

CODECS = {"experiences": "ExperienceBatch", "models": "ModelVersion", "events": "DecisionEvent", "experiences.dlq": "DeadLetter"}


def _jsonable(value):
    if isinstance(value, bytes):
        return {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()[:16]}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def decode_any(topic: str, data: bytes) -> dict:
    codec = AvroCodec(CODECS.get(topic.split(".")[0] if topic not in CODECS else topic, "ExperienceBatch"))
    try:
        return _jsonable(codec.decode(data))
    except CodecError as exc:
        return {"undecodable": exc.kind, "error": str(exc), "raw_base64": base64.b64encode(data[:256]).decode()}


async def replay(bootstrap: str, topic: str, from_offset: int | None, from_ms: int | None, to_offset: int | None,
                 to_ms: int | None, partition: int | None, out=sys.stdout) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    written = 0
    try:
        await consumer.topics()
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        if not parts:
            raise ValueError(f"topic {topic!r} does not exist on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in parts if partition is None or p == partition]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        first = {tp: max(from_offset or 0, starts[tp]) for tp in tps}
        for tp in tps:
            consumer.seek(tp, first[tp])
        # the end is found by reading until the topic is idle: the embedded broker's high
        # watermark can lag the records it serves, so ListOffsets is not trusted for it
        last = {tp: to_offset if to_offset is not None else float("inf") for tp in tps}
        todo = {tp for tp in tps if first[tp] <= last[tp]}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=800)
            if not batch:
                break
            for tp, msgs in batch.items():
                for msg in msgs:
                    if from_ms is not None and msg.timestamp < from_ms:
                        continue
                    if msg.offset > last[tp] or (to_ms is not None and msg.timestamp > to_ms):
                        todo.discard(tp)
                        break
                    line = {"topic": topic, "partition": tp.partition, "offset": msg.offset, "timestamp_ms": msg.timestamp,
                            "key": msg.key.decode(errors="replace") if msg.key else None, "value": decode_any(topic, msg.value)}
                    out.write(json.dumps(line, sort_keys=True) + "\n")
                    written += 1
                    if msg.offset >= last[tp]:
                        todo.discard(tp)
    finally:
        await consumer.stop()
    return written
