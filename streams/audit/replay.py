"""Re-read a range of a topic as JSON lines, for audits: each message's record decoded by the
type its fingerprint names, bytes fields summarised by length and hash, long id lists summarised
(``full=True`` keeps them whole)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from typing import Any, TextIO

from schemas import CodecError, decode_any
from schemas.experiences import unpacked

from streams.kafka.topics import TopicReader

LIST_PREVIEW = 4  # a list of ids longer than this is summarised unless full=True
TEXT_BYTES = ("original_key",)  # bytes fields that hold text (a message key)


def text_or_base64(value: bytes | None) -> Any:
    """A key as text when it is UTF-8, else as ``{"base64": ...}``."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


def jsonable(value: Any, full: bool = False, name: str = "") -> Any:
    if isinstance(value, bytes):
        if name in TEXT_BYTES:
            return text_or_base64(value)
        return {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, dict):
        return {k: jsonable(v, full, k) for k, v in value.items()}
    if isinstance(value, list):
        if not full and len(value) > LIST_PREVIEW and all(isinstance(v, (str, int)) for v in value):
            return {"count": len(value), "distinct": len(set(value)), "first": value[0], "last": value[-1]}
        return [jsonable(v, full) for v in value]
    return value


def decode_message(data: bytes, full: bool = False) -> tuple[str | None, dict]:
    """``(record type, record)`` or, for what does not decode, ``(None, the reason and its first bytes)``."""
    try:
        name, record = decode_any(data)
    except CodecError as exc:
        return None, {"undecodable": exc.kind, "error": str(exc), "raw_base64": base64.b64encode(bytes(data or b"")[:256]).decode()}
    return name, jsonable(unpacked(record) if name == "ExperienceBatch" else record, full)


async def replay(bootstrap: str, topic: str, from_offset: int | None = None, from_ms: int | None = None,
                 to_offset: int | None = None, to_ms: int | None = None, partition: int | None = None,
                 out: TextIO = sys.stdout, full: bool = False, max_messages: int | None = None,
                 follow: bool = False) -> int:
    """Write the messages of ``topic`` between the offsets (``to_offset`` inclusive) and times as
    JSON lines, at most ``max_messages``; up to the end when the replay starts, or on as messages
    come (``follow``, until interrupted). ``from_ms`` seeks each partition to that time. Returns
    how many were written."""
    written = 0
    if max_messages is not None and max_messages <= 0:
        return 0
    async with TopicReader(bootstrap, topic, partition) as reader:
        if not reader.partitions:
            await reader.stop()
            await reader.start(must_exist=True)
        if from_ms is not None:
            await reader.seek_to_time(from_ms)
        if from_offset is not None:
            await reader.seek({tp.partition: max(from_offset, await reader.position(tp)) for tp in reader.partitions}
                              if from_ms is not None else from_offset)
        stops = None
        if to_offset is not None:  # up to --to where a partition has that many, else its end (unless following)
            ends = {} if follow else await reader.ends()
            stops = {tp.partition: min(to_offset + 1, ends.get(tp.partition, to_offset + 1)) for tp in reader.partitions}
        async for msg in reader.read(stops, follow=follow and stops is None):
            if (from_ms is not None and msg.timestamp < from_ms) or (to_ms is not None and msg.timestamp > to_ms):
                continue
            record_type, value = decode_message(msg.value, full)
            line = {"topic": topic, "partition": msg.partition, "offset": msg.offset, "timestamp_ms": msg.timestamp,
                    "key": text_or_base64(msg.key), "type": record_type, "value": value}
            out.write(json.dumps(line, sort_keys=True) + "\n")
            if follow:
                out.flush()
            written += 1
            if max_messages is not None and written >= max_messages:
                break
    return written
