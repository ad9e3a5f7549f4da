"""How a worker's Faust app is configured: in-memory tables (the state is rebuilt from the log),
acks from every in-sync replica, offsets committed every second, and fetches large enough that
ingest never waits on the broker between them."""

from __future__ import annotations

import faust

from streams.kafka.connection import faust_credentials
from streams.settings import Settings


def faust_app(settings: Settings, bootstrap: str) -> faust.App:
    return faust.App(
        settings.broker.app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(),  # METASTREAM_KAFKA_* (TLS, SASL); None: plaintext
        store="memory://",
        web_enabled=settings.process.web_port > 0,
        web_port=settings.process.web_port or 6066,
        web_bind=settings.process.web_host,
        topic_partitions=settings.broker.partitions,
        topic_replication_factor=settings.broker.replication_factor,
        producer_acks=-1,  # all in-sync replicas (Faust's producer is idempotent only under exactly-once processing)
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.broker.rebalance_timeout_s,
        broker_session_timeout=max(10.0, settings.broker.rebalance_timeout_s * 3),
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        # fetch up to 8 MiB a partition: with Faust's 1 MiB the consumer waits on the broker between
        # fetches while ingest works (measured: 0.39 -> 0.62-0.67 of the do-nothing agent, bench/throughput.py)
        consumer_max_fetch_size=8 * 2**20,
        producer_max_request_size=settings.topics.max_message_bytes,  # a version with its weights in one record
    )
