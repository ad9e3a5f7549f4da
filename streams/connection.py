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
from dataclasses import fields
from typing import Any, Mapping

from learners.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_NAMES = ("kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password",
          "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")


def security_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The connection settings: each ``METASTREAM_KAFKA_*`` variable, else the Settings default."""
    from .settings import Settings

    env = os.environ if environ is None else environ
    defaults = {f.name: f.default for f in fields(Settings) if f.name in _NAMES}
    values = {name: env.get(f"METASTREAM_{name.upper()}", defaults[name]) for name in _NAMES}
    protocol, mechanism = values["kafka_security_protocol"].upper(), values["kafka_sasl_mechanism"].upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"METASTREAM_KAFKA_SECURITY_PROTOCOL={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if protocol.startswith("SASL") and mechanism not in MECHANISMS:
        raise ConfigError(f"METASTREAM_KAFKA_SASL_MECHANISM={mechanism!r}: choose one of {', '.join(MECHANISMS)}")
    if protocol.startswith("SASL") and not values["kafka_sasl_username"]:
        raise ConfigError(f"{protocol} needs METASTREAM_KAFKA_SASL_USERNAME and METASTREAM_KAFKA_SASL_PASSWORD")
    return {**values, "kafka_security_protocol": protocol, "kafka_sasl_mechanism": mechanism}


def _ssl_context(values: dict[str, str]):
    from aiokafka.helpers import create_ssl_context

    try:
        return create_ssl_context(cafile=values["kafka_ssl_cafile"] or None, certfile=values["kafka_ssl_certfile"] or None,
                                  keyfile=values["kafka_ssl_keyfile"] or None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot build the TLS context from METASTREAM_KAFKA_SSL_*: {exc}") from None


def client_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producers, consumers and admin client (empty for PLAINTEXT)."""
    values = security_settings(environ)
    protocol = values["kafka_security_protocol"]
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        options.update(sasl_mechanism=values["kafka_sasl_mechanism"], sasl_plain_username=values["kafka_sasl_username"],
                       sasl_plain_password=values["kafka_sasl_password"])
    if protocol.endswith("SSL"):
        options["ssl_context"] = _ssl_context(values)
    return options


def faust_credentials(environ: Mapping[str, str] | None = None):
    """``broker_credentials`` for the worker's Faust app (``None`` for PLAINTEXT)."""
    import faust

    values = security_settings(environ)
    protocol = values["kafka_security_protocol"]
    context = _ssl_context(values) if protocol.endswith("SSL") else None
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(username=values["kafka_sasl_username"], password=values["kafka_sasl_password"],
                                     mechanism=values["kafka_sasl_mechanism"], ssl_context=context)
    return faust.SSLCredentials(context) if context is not None else None
