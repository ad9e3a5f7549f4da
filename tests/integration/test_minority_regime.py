"""Noise is not a regime (the case an outside client found): five agents stream sine tasks at
frequency 1, then one agent alone streams the new regime (frequency 2) while another sends targets
that are noise. Both fit the champion far worse than the others; only the noisy one is quarantined.
The newcomer's tasks fit one another (their labels follow from their inputs), so it is learned from:
none of its experiences goes to the dead-letter topic."""

import asyncio

import numpy as np

from streams.client import ExperiencePublisher
from streams.kafka.topics import read_records
from streams.records.wire import DecisionType
from streams.simulation.fleet import SineFleet

from .conftest import wait_committed, wait_for

CLEAN, TASKS_EACH = 5, 4


async def _round(bootstrap: str, old: SineFleet, new: SineFleet, rng, newcomer: bool, noisy: bool) -> None:
    async with ExperiencePublisher(bootstrap, linger_ms=5) as pub:
        for agent in range(CLEAN):
            for _ in range(TASKS_EACH):
                tid, x, y = old.sample_task()
                await pub.publish("sine", x, y, [tid] * len(x), agent_id=f"clean-{agent}")
        for _ in range(TASKS_EACH if newcomer else 0):
            tid, x, y = new.sample_task()
            await pub.publish("sine", x, y, [f"new-{tid}"] * len(x), agent_id="newcomer")
        for _ in range(TASKS_EACH if noisy else 0):
            tid, x, y = old.sample_task()
            await pub.publish("sine", x, rng.normal(0, 3, y.shape).astype("f4"), [f"noise-{tid}"] * len(x), agent_id="noisy")
        await pub.flush()


def test_an_agent_alone_in_a_new_regime_is_learned_from_and_a_noisy_one_quarantined(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="40", METASTREAM_UPDATE_ITERATIONS="800",
                            METASTREAM_DIAGNOSE_EVERY_S="1").start()
    old, new = SineFleet(seed=21), SineFleet(seed=22, frequency_after_drift=2.0)
    new.drift()
    rng = np.random.default_rng(5)
    def versions_after_a_round(newcomer: bool = False) -> float:
        asyncio.run(_round(broker.bootstrap, old, new, rng, newcomer=newcomer, noisy=False))
        return worker.metrics().get("metastream_versions_published_total", 0)

    # a champion that fits the old regime well (thousands of meta-iterations): the newcomer's tasks stand out
    wait_for(lambda: versions_after_a_round() >= 4, 240, "versions on the old regime", interval=1.0)

    def events():
        return [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]

    def named(agent: str):
        return [e for e in events() if e["event_type"] in (DecisionType.DIAGNOSIS_MADE, DecisionType.REMEDIATION_TAKEN)
                and e["agent_id"] == agent]

    # the newcomer alone in its regime: more tasks than the rule needs, every one read and decided
    for _ in range(8):
        asyncio.run(_round(broker.bootstrap, old, new, rng, newcomer=True, noisy=False))
    wait_committed(broker.bootstrap)
    assert not named("newcomer"), named("newcomer")

    def after_rounds(n: int):
        for _ in range(n):
            asyncio.run(_round(broker.bootstrap, old, new, rng, newcomer=True, noisy=True))
        return [e for e in named("noisy") if e["event_type"] == DecisionType.REMEDIATION_TAKEN]

    quarantine = wait_for(lambda: after_rounds(2), 180, "the noisy agent quarantined", interval=0.5)
    assert "noisy" in quarantine[0]["reason"]
    wait_committed(broker.bootstrap)
    assert not named("newcomer"), named("newcomer")
    letters = [l for _, l in asyncio.run(read_records(broker.bootstrap, "experiences.dlq", "DeadLetter"))]
    assert not [l for l in letters if "newcomer" in l["message"]], letters[:3]
