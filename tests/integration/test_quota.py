"""One agent sending 20 times what the others send cannot crowd them out: with a per-agent quota,
every experience of the polite agents is learned from, the worker keeps publishing versions, and
the flood's excess goes to the dead-letter topic as over_quota, naming the agent."""

import asyncio
import time

from schemas import codec_for
from streams.client import ExperiencePublisher
from streams.simulation.fleet import SineFleet
from streams.kafka.topics import read_records

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

    def refused() -> dict[str, int]:
        """Rows on the dead-letter topic per agent and reason, read from the originals kept there."""
        rows: dict[str, int] = {}
        for _, letter in asyncio.run(read_records(broker.bootstrap, "experiences.dlq", "DeadLetter")):
            batch = codec_for("ExperienceBatch").decode(letter["original"])
            key = f"{batch['agent_id']}/{letter['error_kind']}"
            rows[key] = rows.get(key, 0) + batch["count"]
        return rows

    def accounted():  # every row sent was ingested or dead-lettered
        m, dead = worker.metrics(), refused()
        return (m, dead) if m.get("metastream_experiences_ingested_total", 0) + sum(dead.values()) == sum(sent.values()) else None

    m, dead = wait_for(accounted, 60, "every row ingested or dead-lettered")
    assert set(dead) <= {"flood/over_quota", "flood/quarantined"}, dead  # only the flood was refused
    assert dead.get("flood/over_quota", 0) > 0
    flood_taken = sent["flood"] - sum(dead.values())
    assert flood_taken <= QUOTA * (SECONDS + 2 + 1), (flood_taken, sent)  # rate x time + 2 s burst + a second of slack
    assert m["metastream_experiences_ingested_total"] == sent["polite"] + flood_taken  # every polite row was taken
    wait_for(lambda: worker.metrics().get("metastream_versions_published_total", 0) >= 1, 120,
             "a version published: updates went on")  # the last update may still run when every row is counted
