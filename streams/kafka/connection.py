"""How every Kafka client of metastream connects: plain, TLS, SASL (PLAIN, SCRAM) or both, from the
``METASTREAM_KAFKA_*`` settings, in one place. The SDK, the CLI, the topic reader and the worker's
Faust app all take their options from here, so one set of variables secures them all.

>>> client_options({"METASTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "METASTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
...                 "METASTREAM_KAFKA_SASL_USERNAME": "worker", "METASTREAM_KAFKA_SASL_PASSWORD": "s3cret"})
{'security_protocol': 'SASL_PLAINTEXT', 'sasl_mechanism': 'SCRAM-SHA-256', 'sasl_plain_username': 'worker', 'sasl_plain_password': 's3cret'}
>>> client_options({})
{}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from learners.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PREFIX = "METASTREAM_KAFKA_"


def _doc(text: str, default: str) -> Any:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client connects, read from ``METASTREAM_KAFKA_<FIELD>`` (the password also from the file
    ``METASTREAM_KAFKA_SASL_PASSWORD_FILE`` names, so it need not sit in the environment)."""

    security_protocol: str = _doc("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL: how every Kafka client of metastream connects",
                                  "PLAINTEXT")
    sasl_mechanism: str = _doc("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a SASL_ protocol)", "PLAIN")
    sasl_username: str = _doc("SASL user name", "")
    sasl_password: str = _doc("SASL password; or METASTREAM_KAFKA_SASL_PASSWORD_FILE, a file that holds it", "")
    ssl_cafile: str = _doc("CA bundle (PEM) that signed the brokers' certificates; empty: the system's", "")
    ssl_certfile: str = _doc("client certificate (PEM) for mutual TLS", "")
    ssl_keyfile: str = _doc("the client certificate's private key (PEM)", "")

    @classmethod
    def variables(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, what it does)`` per field, for ``metastream settings``."""
        return [(PREFIX + f.name.upper(), f.default, f.metadata["doc"]) for f in fields(cls)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "KafkaSecurity":
        """The variables that are set over the defaults, checked: a bad value is one :class:`ConfigError`."""
        env = os.environ if environ is None else environ
        values = {f.name: env.get(PREFIX + f.name.upper(), f.default) for f in fields(cls)}
        secret = env.get(PREFIX + "SASL_PASSWORD_FILE")
        if secret:
            try:
                values["sasl_password"] = Path(secret).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{PREFIX}SASL_PASSWORD_FILE={secret!r}: cannot read it ({exc.strerror})") from None
        protocol, mechanism = values["security_protocol"].upper(), values["sasl_mechanism"].upper()
        if protocol not in PROTOCOLS:
            raise ConfigError(f"{PREFIX}SECURITY_PROTOCOL={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        if protocol.startswith("SASL") and mechanism not in MECHANISMS:
            raise ConfigError(f"{PREFIX}SASL_MECHANISM={mechanism!r}: choose one of {', '.join(MECHANISMS)}")
        if protocol.startswith("SASL") and not values["sasl_username"]:
            raise ConfigError(f"{protocol} needs {PREFIX}SASL_USERNAME and {PREFIX}SASL_PASSWORD")
        return cls(**{**values, "security_protocol": protocol, "sasl_mechanism": mechanism})

    def ssl_context(self):
        from aiokafka.helpers import create_ssl_context

        try:
            return create_ssl_context(cafile=self.ssl_cafile or None, certfile=self.ssl_certfile or None,
                                      keyfile=self.ssl_keyfile or None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot build the TLS context from {PREFIX}SSL_*: {exc}") from None


def principal(environ: Mapping[str, str] | None = None) -> str:
    """The SASL user this client authenticates as ("" without SASL): who the broker knows it to be."""
    sec = KafkaSecurity.from_env(environ)
    return sec.sasl_username if sec.security_protocol.startswith("SASL") else ""


def client_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producers, consumers and admin client (empty for PLAINTEXT)."""
    sec = KafkaSecurity.from_env(environ)
    if sec.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": sec.security_protocol}
    if sec.security_protocol.startswith("SASL"):
        options.update(sasl_mechanism=sec.sasl_mechanism, sasl_plain_username=sec.sasl_username,
                       sasl_plain_password=sec.sasl_password)
    if sec.security_protocol.endswith("SSL"):
        options["ssl_context"] = sec.ssl_context()
    return options


def faust_credentials(environ: Mapping[str, str] | None = None):
    """``broker_credentials`` for the worker's Faust app (``None`` for PLAINTEXT)."""
    import faust

    sec = KafkaSecurity.from_env(environ)
    context = sec.ssl_context() if sec.security_protocol.endswith("SSL") else None
    if sec.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(username=sec.sasl_username, password=sec.sasl_password,
                                     mechanism=sec.sasl_mechanism, ssl_context=context)
    return faust.SSLCredentials(context) if context is not None else None
