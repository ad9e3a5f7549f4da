"""One agent of six sends label noise (5-way digit tasks whose labels are drawn at random): the
worker names it (DiagnosisMade noisy_agent, RemediationTaken quarantine) and the champion's
accuracy on held-out clean tasks drops by at most 1 point over the attack."""

import asyncio
import json

import numpy as np

from learners.online import score_points
from streams.client import ExperiencePublisher, ModelSubscriber
from streams.simulation.fleet import DigitFleet
from streams.records.wire import DecisionType
from streams.kafka.topics import read_records

from .conftest import wait_for
from .test_classify_stream import _fresh_tasks

AGENTS, TASKS_EACH, ROUNDS = 5, 6, 8


async def _rounds(bootstrap: str, fleet: DigitFleet, poison: bool) -> None:
    rng = np.random.default_rng(1)
    async with ExperiencePublisher(bootstrap, linger_ms=5) as pub:
        for _ in range(ROUNDS):
            for agent in range(AGENTS):
                for _ in range(TASKS_EACH):
                    tid, x, y = fleet.sample_task()
                    await pub.publish("digits", x, y, [tid] * len(x), agent_id=f"clean-{agent}")
            for _ in range(TASKS_EACH if poison else 0):
                tid, x, y = fleet.sample_task()
                noise = rng.integers(0, 5, y.shape).astype("f4")
                await pub.publish("digits", x, noise, [f"p-{tid}"] * len(x), agent_id="mallory")
            await pub.flush()
            await asyncio.sleep(0.8)


async def _champion(bootstrap: str):
    async with ModelSubscriber(bootstrap, model_ids=["digits"]) as sub:
        for _ in range(10):
            await sub.poll(300)
        return sub.latest_versions["digits"]


def test_a_poisoning_agent_is_named_and_the_champion_does_not_regress(broker, worker_factory):
    worker = worker_factory(METASTREAM_MODELS=json.dumps({"digits": "digits"}), METASTREAM_NEW_TASKS_TRIGGER="30",
                            METASTREAM_UPDATE_ITERATIONS="60", METASTREAM_DIAGNOSE_EVERY_S="1").start()
    fleet = DigitFleet(seed=12)
    asyncio.run(_rounds(broker.bootstrap, fleet, poison=False))
    wait_for(lambda: worker.metrics().get("metastream_versions_published_total", 0) >= 2, 90, "versions before the attack")
    clean = _fresh_tasks(False)
    before = asyncio.run(_champion(broker.bootstrap))
    published = worker.metrics().get("metastream_versions_published_total", 0)
    asyncio.run(_rounds(broker.bootstrap, fleet, poison=True))

    def events():
        return [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]

    named = wait_for(lambda: [e for e in events() if e["event_type"] == DecisionType.REMEDIATION_TAKEN and "mallory" in e["reason"]],
                     60, "the poisoning agent named and quarantined")
    assert any(e["event_type"] == DecisionType.DIAGNOSIS_MADE and "noisy_agent" in e["reason"] for e in events()), named
    # the worker went on learning through the attack: a version trained on what came during it
    wait_for(lambda: worker.metrics().get("metastream_versions_published_total", 0) > published, 120,
             "a version published during or after the attack")
    after = asyncio.run(_champion(broker.bootstrap))
    assert after.version > before.version, (before.version, after.version)
    drop = score_points(before.learner, clean) - score_points(after.learner, clean)
    assert drop <= 1.0, (before.version, after.version, drop)
