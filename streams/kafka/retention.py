"""How long each topic keeps its records, and a check that an existing topic keeps what the audit
trail needs.

Kafka deletes a topic's records after ``retention.ms`` (7 days unless the cluster says otherwise).
The registry (``models``), the decisions (``events``) and the scores the detectors replay must stay
as long as the versions they explain; ``audit rebuild`` also reads the experiences a version was
trained on, so those are kept for as long as the operator wants to rebuild.
"""

from __future__ import annotations

from typing import Iterable, Mapping

DAY_MS = 24 * 3600 * 1000
RETENTION = "retention.ms"


def forever() -> dict[str, str]:
    """The topic configs of a topic that never deletes by age."""
    return {RETENTION: "-1"}


def kept_for(days: float) -> dict[str, str]:
    """The topic configs of a topic that keeps ``days`` days of records (0: forever).

    >>> kept_for(0)
    {'retention.ms': '-1'}
    >>> kept_for(30)
    {'retention.ms': '2592000000'}
    """
    return forever() if days <= 0 else {RETENTION: str(int(days * DAY_MS))}


def retention_ms(configs: Mapping[str, str]) -> int:
    """The retention of a topic from its configs; -1 means forever (and so does no config)."""
    value = configs.get(RETENTION)
    return -1 if value in (None, "") else int(value)


def problems(wanted: Mapping[str, Mapping[str, str]], actual: Mapping[str, Mapping[str, str]],
             governed: Mapping[str, str] = {}) -> list[str]:
    """One line per topic that deletes records sooner than ``wanted`` asks, saying what to do;
    ``governed`` names the setting that sets a topic's retention, offered as the other fix.

    >>> problems({"events": forever()}, {"events": {"retention.ms": "604800000"}})[0][:62]
    'topic events deletes records after 7 days, but the audit trail'
    >>> problems({"events": forever()}, {"events": {"retention.ms": "-1"}})
    []
    """
    found = []
    for topic, configs in wanted.items():
        if topic not in actual:
            continue
        want, have = retention_ms(configs), retention_ms(actual[topic])
        if have < 0 or (want >= 0 and have >= want):
            continue
        keep = "forever" if want < 0 else f"{want / DAY_MS:g} days"
        fix = (f"kafka-configs --bootstrap-server HOST:PORT --alter --entity-type topics --entity-name {topic} "
               f"--add-config retention.ms={want}")
        if topic in governed:
            fix += f", or set {governed[topic]}={have / DAY_MS:g} to keep only that much on purpose"
        found.append(f"topic {topic} deletes records after {have / DAY_MS:g} days, but the audit trail needs them "
                     f"{keep}: {fix}")
    return found


async def topic_configs(bootstrap: str, topics: Iterable[str]) -> dict[str, dict[str, str]]:
    """The configs the broker reports for each existing topic of ``topics``."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from streams.kafka.connection import client_options

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [t for t in topics if t in existing]
        if not names:
            return {}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in names])
        found: dict[str, dict[str, str]] = {}
        for response in responses:
            for resource in response.resources:
                _, _, _, name, entries = resource[:5]
                found[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
        return found
    finally:
        await admin.close()
