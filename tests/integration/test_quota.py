"""One agent sending 20 times what the others send cannot crowd them out: with a per-agent quota,
every experience of the polite agents is learned from, the worker keeps publishing versions, and
the flood's excess goes to the dead-letter topic as over_quota, naming the agent."""

import asyncio
import time

from streams.client import ExperiencePublisher
from streams.fleet import SineFleet

from .conftest import wait_for

POLITE, SECONDS, QUOTA = 5, 8, 100  # agents; duration; rows/s per agent (the polite send 40, the flood 800)


def test_a_flooding_agent_is_held_to_its_quota_and_the_others_lose_nothing(broker, worker_factory):
    worker = worker_factory(METASTREAM_AGENT_ROWS_PER_S=str(QUOTA), METASTREAM_NEW_TASKS_TRIGGER="30").start()
    fleet = SineFleet(seed=8)
    sent = {"polite": 0, "flood": 0}

    async def publish():
        async with ExperiencePublisher(broker.bootstrap, linger_ms=5, batch_size=40) as pub:
            start = time.monotonic()
            for second in range(SECONDS):
                for tick in range(10):
                    for agent in range(POLITE):
                        if tick == agent:  # one 40-point task per polite agent per second
                            tid, x, y = fleet.sample_task()
                            await pub.publish("sine", x, y, [tid] * len(x), agent_id=f"polite-{agent}")
                            sent["polite"] += len(x)
                    for _ in range(2):  # twenty tasks a second
                        tid, x, y = fleet.sample_task()
                        await pub.publish("sine", x, y, [tid] * len(x), agent_id="flood")
                        sent["flood"] += len(x)
                    await pub.flush()
                    await asyncio.sleep(max(0.0, start + second + (tick + 1) / 10 - time.monotonic()))

    asyncio.run(publish())
    m = wait_for(lambda: (lambda m: m if m.get("metastream_experiences_ingested_total", 0)
                          + 40 * m.get("metastream_experiences_rejected_total", 0)
                          == sent["polite"] + sent["flood"] else None)(worker.metrics()), 60, "every row accounted for")
    assert m['metastream_experiences_rejected_total{reason="over_quota"}'] > 0
    refused_rows = 40 * m["metastream_experiences_rejected_total"]  # over quota (or, later, quarantined: the flood alone)
    flood_taken = sent["flood"] - refused_rows
    assert refused_rows > 0 and flood_taken <= QUOTA * (SECONDS + 2 + 1), (flood_taken, sent)  # rate x time + 2 s burst + a second of slack
    assert m["metastream_experiences_ingested_total"] == sent["polite"] + flood_taken  # every polite row was taken
    assert m.get("metastream_versions_published_total", 0) >= 1  # updates went on
