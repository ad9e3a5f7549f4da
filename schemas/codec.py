"""Avro single-object encoding (marker ``C3 01``, 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema, then the binary body) on fastavro, without a schema registry.

Readers look the fingerprint up among every schema this package ships, current and historical
(``avro/history``), and resolve the writer's schema to the current reader schema, so old records
stay readable after a backward-compatible change.

>>> codec = AvroCodec("DecisionEvent")
>>> rec = {"event_type": "DriftDetected", "model_id": "sine", "version": None, "timestamp_ms": 1,
...        "reason": "ADWIN", "figures": {"loss": 2.0}}
>>> data = codec.encode(rec)
>>> data[:2] == MARKER and codec.decode(data) == {**rec, "cause": "other", "agent_id": None, "rollout": None,
...                                               "ab_test": None, "drop_challenger": False, "signature": b"", "key_id": "",
...                                               "label": None, "rule": ""}
True
>>> decode_any(data)[0]
'DecisionEvent'
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

MARKER = b"\xc3\x01"
HEADER = len(MARKER) + 8
AVRO_DIR = Path(__file__).resolve().parent / "avro"


class CodecError(ValueError):
    """A message that is not a readable record; ``kind`` names why (used as the DLQ reason)."""

    kind = "codec_error"


class BadMarker(CodecError):
    kind = "bad_marker"


class UnknownFingerprint(CodecError):
    kind = "unknown_fingerprint"


class TruncatedBody(CodecError):
    kind = "truncated"


class WrongRecordType(CodecError):
    kind = "wrong_record_type"


def schema_fingerprint(parsed: dict) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of a schema's parsing canonical form."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


@lru_cache(maxsize=None)
def _catalogue() -> tuple[dict[str, dict], dict[bytes, tuple[str, dict]]]:
    """Current schema per record name, and every known writer schema by fingerprint."""
    current: dict[str, dict] = {}
    by_fp: dict[bytes, tuple[str, dict]] = {}
    for path in sorted(AVRO_DIR.glob("*.avsc")):
        parsed = parse_schema(json.loads(path.read_text()), _write_hint=False)
        current[path.stem] = parsed
        by_fp[schema_fingerprint(parsed)] = (path.stem, parsed)
    for path in sorted((AVRO_DIR / "history").glob("*.avsc")):
        name = path.name.split(".")[0]
        parsed = parse_schema(json.loads(path.read_text()), _write_hint=False)
        by_fp[schema_fingerprint(parsed)] = (name, parsed)
    return current, by_fp


def schema(name: str) -> dict:
    current, _ = _catalogue()
    if name not in current:
        raise KeyError(f"no Avro schema named {name!r}; known: {sorted(current)}")
    return current[name]


def history_schema(name: str, version: int) -> dict:
    """A historical writer schema, e.g. ``history_schema("ExperienceBatch", 1)`` (for tests and tools)."""
    path = AVRO_DIR / "history" / f"{name}.v{version}.avsc"
    return parse_schema(json.loads(path.read_text()), _write_hint=False)


def writer_schemas(name: str) -> list[dict]:
    """Every schema a record of ``name`` may have been written with: the current one first, then the
    historical ones, newest first."""
    current, by_fp = _catalogue()
    older = [parsed for n, parsed in by_fp.values() if n == name and parsed is not current[name]]
    return [current[name], *reversed(older)]


def encode_body(record: dict[str, Any], writer: dict) -> bytes:
    """The Avro binary body of ``record`` under the writer schema ``writer`` (fields it does not
    name are left out): what a signature covers, with the writer's fingerprint."""
    buf = io.BytesIO()
    schemaless_writer(buf, writer, _bytes_as_bytes(record, writer))
    return buf.getvalue()


def _bytes_as_bytes(record: dict[str, Any], writer: dict) -> dict[str, Any]:
    """``record`` with its top-level ``bytes`` fields as bytes: Avro gives a bytes default as a
    string (fastavro fills it in as ``""`` when reading an older record, and would write a missing
    field's default as that string, which it then refuses)."""
    fixed = None
    for name, default in _bytes_fields(id(writer), writer):
        value = record.get(name, default)
        if isinstance(value, str):
            fixed = fixed if fixed is not None else dict(record)
            fixed[name] = value.encode("latin-1")
    return record if fixed is None else fixed


_BYTES_FIELDS: dict[int, tuple[dict, tuple[tuple[str, Any], ...]]] = {}


def _bytes_fields(key: int, writer: dict) -> tuple[tuple[str, Any], ...]:
    """``(name, default)`` of ``writer``'s top-level bytes fields, found once per schema (every
    encode asks). The entry keeps the schema alive, so its id is never another schema's."""
    entry = _BYTES_FIELDS.get(key)
    if entry is None or entry[0] is not writer:
        entry = _BYTES_FIELDS[key] = (writer, tuple((f["name"], f.get("default")) for f in writer.get("fields", ())
                                                    if f["type"] == "bytes"))
    return entry[1]


class AvroCodec:
    """Encode records with the current schema of ``name``; decode any known version of it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema = schema(name)
        self.fingerprint = schema_fingerprint(self.schema)

    def encode(self, record: dict[str, Any], writer_schema: dict | None = None) -> bytes:
        """Single-object encoding; ``writer_schema`` lets tests write with an older version."""
        parsed = writer_schema or self.schema
        buf = io.BytesIO()
        buf.write(MARKER)
        buf.write(self.fingerprint if writer_schema is None else schema_fingerprint(parsed))
        buf.write(encode_body(record, parsed))
        return buf.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < HEADER or data[:2] != MARKER:
            raise BadMarker(f"not Avro single-object encoding: expected marker C3 01, got {data[:2].hex() or 'nothing'}")
        fp = data[2:HEADER]
        entry = _catalogue()[1].get(fp)
        if entry is None:
            raise UnknownFingerprint(f"unknown writer schema fingerprint {fp.hex()}")
        name, writer = entry
        if name != self.name:
            raise WrongRecordType(f"expected a {self.name} record, got {name}")
        body = io.BytesIO(data)
        body.seek(HEADER)
        try:
            # the current schema needs no resolution (fastavro resolves whenever a reader schema is given)
            record = schemaless_reader(body, writer, None if writer is self.schema else self.schema)
        except (EOFError, StopIteration, IndexError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise TruncatedBody(f"{self.name} body is truncated or corrupt: {exc or type(exc).__name__}") from None
        if body.tell() != len(data):
            raise TruncatedBody(f"{self.name} body has {len(data) - body.tell()} trailing bytes")
        return record if writer is self.schema else _bytes_as_bytes(record, self.schema)


@lru_cache(maxsize=None)
def codec_for(name: str) -> AvroCodec:
    """The one codec of a record type (built once per process: parsing schemas is not free)."""
    return AvroCodec(name)


def record_type(data: bytes) -> str:
    """The record type a single-object message holds, read from its writer-schema fingerprint."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data[:HEADER])
    if len(data) < HEADER or data[:2] != MARKER:
        raise BadMarker(f"not Avro single-object encoding: expected marker C3 01, got {data[:2].hex() or 'nothing'}")
    entry = _catalogue()[1].get(data[2:HEADER])
    if entry is None:
        raise UnknownFingerprint(f"unknown writer schema fingerprint {data[2:HEADER].hex()}")
    return entry[0]


def decode_any(data: bytes) -> tuple[str, dict[str, Any]]:
    """``(record type, record)`` of any record this package knows, picked by its fingerprint."""
    name = record_type(data)
    return name, codec_for(name).decode(data)
