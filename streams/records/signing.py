"""Signed model versions (Ed25519, through ``cryptography``): a worker signs what defines a version
(its weights' SHA-256 and every metadata field), and a subscriber that holds the worker's public
key loads only versions that key signed. The sha256 alone proves only that weights and hash agree;
anyone who can write to the topic can forge both, and the config (which decides what model is
built) is outside it.

The signature covers the bytes as written: the writer schema's fingerprint and the record's Avro
body under it, with the weights, signature and key id blanked. A reader with a newer schema fills
the fields the writer did not have with their defaults; the verifier re-encodes under each schema
the record may have been written with (one whose missing fields all hold their defaults), so a
version signed before a schema change still verifies after it, and a field added later cannot be
forged under an old signature.

>>> from schemas import codec_for
>>> from streams.records.wire import model_version
>>> key = Signer.generate()
>>> record = codec_for("ModelVersion").decode(model_version("sine", 1, None, "maml", b"w", {}, {}, [], signer=key))
>>> Verifier([key.public_pem()]).check(record) is None
True
>>> Verifier([key.public_pem()]).check({**record, "config_json": '{"hidden": 4096}'})
'its signature does not verify (tampered after signing)'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from learners.errors import ConfigError
from schemas import encode_body, schema, schema_fingerprint, writer_schemas

UNSIGNED_FIELDS = ("weights", "signature", "key_id")  # weights are covered through their sha256
RECORD = "ModelVersion"
BLANKED = {"ModelVersion": {"weights": b"", "signature": b"", "key_id": ""},  # what a signature leaves out, per record type
           "DecisionEvent": {"signature": b"", "key_id": ""}}


def signed_bytes(record: dict[str, Any], writer: dict | None = None, record_type: str = RECORD) -> bytes:
    """The bytes a signature covers: the fingerprint of ``writer`` (the current schema of
    ``record_type`` unless given) and the record's Avro body under it, its unsigned fields blanked."""
    writer = writer or schema(record_type)
    return schema_fingerprint(writer) + encode_body({**record, **BLANKED[record_type]}, writer)


def legacy_bytes(record: dict[str, Any], writer: dict, record_type: str = RECORD) -> bytes:
    """What versions signed before signatures covered the Avro bytes signed: sorted JSON of the
    writer's fields but the unsigned ones (bytes as hex). Model versions only."""
    if record_type != RECORD:
        raise ValueError("only model versions were signed over JSON")
    fields = {f["name"]: record.get(f["name"]) for f in writer["fields"] if f["name"] not in UNSIGNED_FIELDS}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=_plain).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    raise TypeError(f"cannot sign a field of type {type(value).__name__}")


_MISSING = object()


def possible_writers(record: dict[str, Any], record_type: str = RECORD) -> list[dict]:
    """The schemas of ``record_type`` that ``record`` may have been written with: those with a
    signature whose missing fields (added later) all hold the default the reader filled in."""
    current = schema(record_type)
    found = []
    for writer in writer_schemas(record_type):
        names = {f["name"] for f in writer["fields"]}
        if "signature" not in names:
            continue
        added = [f for f in current["fields"] if f["name"] not in names]
        if all(record.get(f["name"], _MISSING) == f.get("default", _MISSING) for f in added):
            found.append(writer)
    return found


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw public key: names the key in records and errors."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """Signs records with one private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.key_id = key_id(private.public_key())

    @classmethod
    def generate(cls) -> "Signer":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: str | Path) -> "Signer":
        """A PEM (PKCS#8) Ed25519 private key, as ``metastream keys generate`` writes it."""
        try:
            private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read the signing key {path}: {exc}; make one with `metastream keys generate`") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an Ed25519 private key; make one with `metastream keys generate`")
        return cls(private)

    def sign(self, record: dict[str, Any], record_type: str = RECORD) -> dict[str, Any]:
        """The fields to add to ``record`` (a ``record_type``, written with its current schema):
        ``signature`` and ``key_id``."""
        return {"signature": self.private.sign(signed_bytes(record, record_type=record_type)), "key_id": self.key_id}

    def private_pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class Verifier:
    """Checks records against the public keys it trusts (PEM bytes, or paths to PEM files)."""

    @classmethod
    def from_paths(cls, paths: str) -> "Verifier | None":
        """From comma-separated PEM file paths (``METASTREAM_VERIFY_KEYS``); ``None`` when there are none."""
        keys = [k.strip() for k in paths.split(",") if k.strip()]
        return cls(keys) if keys else None

    def __init__(self, keys: Iterable[bytes | str | Path]) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            pem = key if isinstance(key, bytes) else _read(key)
            try:
                public = serialization.load_pem_public_key(pem)
            except ValueError as exc:
                raise ConfigError(f"cannot read the verify key {key!s:.80}: {exc}") from None
            if not isinstance(public, Ed25519PublicKey):
                raise ConfigError(f"the verify key {key!s:.80} is not an Ed25519 public key")
            self.keys[key_id(public)] = public

    def check(self, record: dict[str, Any], record_type: str = RECORD) -> str | None:
        """``None`` when a trusted key signed exactly this record; otherwise why not."""
        signature, kid = record.get("signature") or b"", record.get("key_id") or ""
        if not signature:
            return f"it is unsigned (only {'versions' if record_type == RECORD else 'requests'} signed by a trusted key count)"
        public = self.keys.get(kid)
        if public is None:
            return f"it is signed by key {kid or '?'}, which is not trusted (trusted: {', '.join(self.keys)})"
        for writer in possible_writers(record, record_type):
            for signed in (signed_bytes, legacy_bytes):
                try:
                    public.verify(signature, signed(record, writer, record_type))
                    return None
                except (InvalidSignature, ValueError, TypeError, KeyError, AttributeError):
                    continue  # not what was signed, or not encodable under this writer
        return "its signature does not verify (tampered after signing)"


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the verify key {path}: {exc.strerror}") from None
