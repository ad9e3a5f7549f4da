"""Topics keep the audit trail: the registry, the decisions and the scores never expire, the
experiences are kept as long as a setting says, and a worker that finds a topic deleting sooner
says so at start, naming the fix (configs read back from the broker)."""

import asyncio

from .conftest import WorkerProcess

from streams.kafka.broker import EmbeddedBroker, ensure_topics
from streams.kafka.retention import DAY_MS, topic_configs
from streams.settings import Settings

WEEK_MS = str(7 * DAY_MS)


def test_the_test_brokers_topics_never_expire(broker):
    configs = asyncio.run(topic_configs(broker.bootstrap, Settings().topics.all))
    assert {t: c.get("retention.ms") for t, c in configs.items()} == {t: "-1" for t in Settings().topics.all}


def test_a_worker_creates_topics_that_keep_the_trail_and_warns_of_one_that_does_not(tmp_path):
    topics = Settings().topics
    with EmbeddedBroker() as broker:
        # someone created the events topic before the worker, with Kafka's default of 7 days
        asyncio.run(ensure_topics(broker.bootstrap, {topics.events: {"retention.ms": WEEK_MS}}, 2))
        worker = WorkerProcess(broker.bootstrap, tmp_path / "worker.log", METASTREAM_EXPERIENCES_RETENTION_DAYS="30",
                               METASTREAM_SNAPSHOT_DIR=str(tmp_path / "snapshots"))
        try:
            worker.start()
            configs = asyncio.run(topic_configs(broker.bootstrap, topics.all))
            log = worker.log.read_text()
        finally:
            worker.kill()
    retention = {t: c.get("retention.ms") for t, c in configs.items()}
    assert retention == {topics.experiences: str(30 * DAY_MS), topics.dlq: str(30 * DAY_MS), topics.models: "-1",
                         topics.scores: "-1", topics.events: WEEK_MS}
    warnings = [line for line in log.splitlines() if line.startswith("warning: topic")]
    assert len(warnings) == 1, log[-3000:]
    assert "topic events deletes records after 7 days" in warnings[0]
    assert "--entity-name events --add-config retention.ms=-1" in warnings[0]


def test_a_shorter_experiences_topic_names_the_setting_that_accepts_it(tmp_path):
    topics = Settings().topics
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap, {topics.experiences: {"retention.ms": WEEK_MS}}, 2))
        worker = WorkerProcess(broker.bootstrap, tmp_path / "worker.log", METASTREAM_SNAPSHOT_DIR=str(tmp_path / "s"))
        try:
            worker.start()
            log = worker.log.read_text()
        finally:
            worker.kill()
    warnings = [line for line in log.splitlines() if line.startswith("warning: topic")]
    assert len(warnings) == 1 and "METASTREAM_EXPERIENCES_RETENTION_DAYS=7" in warnings[0], log[-3000:]
