"""Producers wait for all in-sync replicas and are idempotent where the broker allows; the embedded
broker gives no producer ids, which is found out by asking and said once."""

import asyncio
import logging

from streams.kafka.durability import producer_options, supports_idempotence


def test_the_embedded_broker_s_missing_idempotence_is_found_and_said_once(broker, caplog):
    async def ask():
        return [await producer_options(broker.bootstrap) for _ in range(3)]

    with caplog.at_level(logging.WARNING, logger="metastream.durability"):
        options = asyncio.run(ask())
    assert options == [{"acks": "all", "enable_idempotence": False}] * 3
    said = [r for r in caplog.records if "gives no producer ids" in r.getMessage()]
    assert len(said) == 1 and broker.bootstrap in said[0].getMessage()
    assert asyncio.run(supports_idempotence(broker.bootstrap)) is False
