"""Signed model versions (Ed25519, through ``cryptography``): a worker signs what defines a version
(its weights' SHA-256 and every metadata field), and a subscriber that holds the worker's public
key loads only versions that key signed. The sha256 alone proves only that weights and hash agree;
anyone who can write to the topic can forge both, and the config (which decides what model is
built) is outside it.

>>> key = Signer.generate()
>>> record = {"model_id": "sine", "version": 1, "weights": b"w", "sha256": "ab", "config_json": "{}"}
>>> record.update(key.sign(record))
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

UNSIGNED_FIELDS = ("weights", "signature", "key_id")  # weights are covered through their sha256


def signed_bytes(record: dict[str, Any]) -> bytes:
    """The canonical bytes a signature covers: every field but the weights (their sha256 stands for
    them), the signature and the key id, as sorted JSON."""
    fields = {k: v for k, v in record.items() if k not in UNSIGNED_FIELDS}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=_plain).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    raise TypeError(f"cannot sign a field of type {type(value).__name__}")


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

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """The fields to add to ``record``: ``signature`` and ``key_id``."""
        return {"signature": self.private.sign(signed_bytes(record)), "key_id": self.key_id}

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

    def check(self, record: dict[str, Any]) -> str | None:
        """``None`` when a trusted key signed exactly this record; otherwise why not."""
        signature, kid = record.get("signature") or b"", record.get("key_id") or ""
        if not signature:
            return "it is unsigned (this subscriber only loads signed versions)"
        public = self.keys.get(kid)
        if public is None:
            return f"it is signed by key {kid or '?'}, which this subscriber does not trust (trusted: {', '.join(self.keys)})"
        try:
            public.verify(signature, signed_bytes(record))
        except InvalidSignature:
            return "its signature does not verify (tampered after signing)"
        return None


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the verify key {path}: {exc.strerror}") from None
