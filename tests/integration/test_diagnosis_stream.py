"""Self-diagnosis on the embedded broker: an agent that sends mostly unusable data is diagnosed,
quarantined (its experiences go to the dead-letter topic with that reason) and named in events,
while the other agents' experiences are still learned from; a worker restarted after a SIGKILL
still refuses it, and refused the same messages while it rebuilt."""

import asyncio

import numpy as np

from schemas import codec_for
from schemas.experiences import make_batch_record
from streams.client import ExperiencePublisher
from streams.simulation.fleet import SineFleet
from streams.records.wire import DecisionType
from streams.kafka.topics import read_records

from .conftest import wait_committed, wait_for


def test_an_agent_sending_bad_data_is_quarantined_and_named(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="100000", METASTREAM_DIAGNOSE_EVERY_S="1").start()
    fleet = SineFleet(seed=4)

    async def publish() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        bad = make_batch_record("sine", np.zeros((4, 1)), np.zeros((4, 1)), ["t"] * 4, agent_id="mallory")
        bad["features"] = b"\x00" * 3  # a batch whose features do not fit its shape
        for _ in range(40):
            await producer.send_and_wait("experiences", codec_for("ExperienceBatch").encode(bad), key=b"sine")
        await producer.stop()

    asyncio.run(publish())

    def events():
        return [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]

    taken = wait_for(lambda: [e for e in events() if e["event_type"] == DecisionType.REMEDIATION_TAKEN], 30, "a remedy")
    assert "mallory" in taken[0]["reason"] and taken[0]["agent_id"] == "mallory"
    assert any(e["event_type"] == DecisionType.DIAGNOSIS_MADE and "poisoning_agent" in e["reason"] for e in events())

    async def both() -> None:  # now mallory's well-formed data is refused, alice's is learned from
        async with ExperiencePublisher(broker.bootstrap, agent_id="mallory") as m, ExperiencePublisher(broker.bootstrap,
                                                                                                        agent_id="alice") as a:
            for pub in (m, a):
                tid, x, y = fleet.sample_task()
                await pub.publish("sine", x, y, [tid] * len(x))

    def refused() -> list:
        return [l for _, l in asyncio.run(read_records(broker.bootstrap, "experiences.dlq", "DeadLetter"))
                if l["error_kind"] == "quarantined"]

    asyncio.run(both())
    wait_for(lambda: worker.metrics().get("metastream_experiences_ingested_total") == 40, 30, "alice's experiences")
    letters = wait_for(refused, 30, "mallory's refused batch")
    assert "mallory" in letters[0]["message"]
    assert worker.metrics().get("metastream_agents_quarantined") == 1.0

    # a restart rebuilds the quarantine from the log: the replay refuses mallory's batch again
    # (alice's count is what it was) and mallory's next batch is refused as well

    wait_committed(broker.bootstrap)
    worker.kill()
    again = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="100000", METASTREAM_DIAGNOSE_EVERY_S="1").start()
    wait_for(lambda: again.metrics().get("metastream_experiences_ingested_total") == 40, 30, "the rebuilt count")
    wait_for(lambda: again.metrics().get("metastream_agents_quarantined") == 1.0, 30, "the quarantine rebuilt")
    asyncio.run(both())
    wait_for(lambda: again.metrics().get("metastream_experiences_ingested_total") == 80, 30, "alice's second batch")
    wait_for(lambda: len(refused()) == 2, 30, "mallory's second batch refused")
