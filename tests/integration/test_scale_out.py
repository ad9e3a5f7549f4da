"""Two workers in one consumer group share the model ids (each learns the models whose partition
it holds); killing one hands its models to the other, which rebuilds them from the log: no
experience is lost or counted twice, and no version number is published twice."""

import asyncio
import json
import threading

from schemas import codec_for
from streams.client import ExperiencePublisher
from streams.simulation.fleet import SineFleet
from streams.worker.state import home_partition
from streams.kafka.topics import read_range, read_records
from streams.records.wire import DecisionType

from .conftest import wait_for

MODELS = ("sine-a", "sine2")  # homed on partitions 1 and 0 of 2


def owned(worker) -> set[str]:
    m = worker.metrics()
    return {mid for mid in MODELS if m.get(f'metastream_model_owned{{model_id="{mid}"}}') == 1.0}


def test_two_workers_share_models_and_one_takes_over_when_the_other_is_killed(broker, worker_factory):
    assert {home_partition(m, 2) for m in MODELS} == {0, 1}
    env = {"METASTREAM_MODELS": json.dumps({m: "sine" for m in MODELS}), "METASTREAM_NEW_TASKS_TRIGGER": "25",
           "METASTREAM_UPDATE_ITERATIONS": "20"}
    first = worker_factory(**env).start()
    second = worker_factory(**env).start()
    wait_for(lambda: len(owned(first)) == 1 and len(owned(second)) == 1, 60, "the group to give each worker one model")
    assert owned(first) | owned(second) == set(MODELS)

    fleets = {m: SineFleet(seed=i, points_per_task=20) for i, m in enumerate(MODELS)}
    sent: dict[str, set[str]] = {m: set() for m in MODELS}

    async def publish(tasks: int, pause: float, models=MODELS) -> None:
        async with ExperiencePublisher(broker.bootstrap, batch_size=32, linger_ms=5) as pub:
            for i in range(tasks):
                for mid in models:
                    fleet = fleets[mid]
                    tid, x, y = fleet.sample_task()
                    ids = [f"{mid}-{tid}-{k}" for k in range(len(x))]
                    await pub.publish(mid, x, y, [tid] * len(x), event_ids=ids)
                    sent[mid].update(ids)
                    if i % 10 == 0:  # a producer retry: the same experiences again
                        await pub.publish(mid, x[:5], y[:5], [tid] * 5, event_ids=ids[:5])
                await asyncio.sleep(pause)

    publisher = threading.Thread(target=lambda: asyncio.run(publish(260, 0.03)))
    publisher.start()
    wait_for(lambda: all(w.metrics().get("metastream_versions_published_total", 0) >= 1 for w in (first, second)), 90,
             "both workers to publish a version of their model")
    moved = owned(first)
    first.kill()
    wait_for(lambda: owned(second) == set(MODELS), 90, "the surviving worker to take over the killed one's model")
    publisher.join()
    # the survivor says a member was lost, which partition it took and what it replayed
    def events():
        return [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]

    lost = wait_for(lambda: [e for e in events() if e["event_type"] == DecisionType.MEMBER_LOST], 60, "the survivor's MemberLost")
    assert len(lost) == 1 and lost[0]["figures"]["partitions_taken"] == 1 and lost[0]["figures"]["models_taken"] == 1, lost
    assert not [e for e in events() if e["event_type"] == DecisionType.WORKER_RESTARTED]  # no worker restarted in place

    def counts() -> dict[str, float]:
        m = second.metrics()
        return {mid: m.get(f'metastream_experiences_ingested_total{{model_id="{mid}"}}', 0.0) for mid in MODELS}

    (moved_id,) = moved

    def published_moved() -> bool:
        return second.metrics().get(f'metastream_versions_published_total{{model_id="{moved_id}"}}', 0) >= 1

    # the survivor learns the moved model on: it publishes a version once it has 25 new tasks of it
    # (on a slow machine the publisher may be done before the takeover is, so it gets more, 30 at a time)
    for _ in range(6):
        try:
            wait_for(published_moved, 30, f"the surviving worker to publish a version of {moved_id}")
            break
        except AssertionError:
            asyncio.run(publish(30, 0.0, models=(moved_id,)))
    wait_for(published_moved, 30, f"the surviving worker to publish a version of {moved_id} after 180 more tasks")
    expected = {mid: float(len(ids)) for mid, ids in sent.items()}
    wait_for(lambda: counts() == expected, 90, f"the surviving worker to count every experience once ({expected})")

    async def versions():
        return [codec_for("ModelVersion").decode(m.value) async for m in read_range(broker.bootstrap, "models")]

    published = [(r["model_id"], r["version"]) for r in asyncio.run(versions())]
    for mid in MODELS:
        numbers = [v for m, v in published if m == mid]
        assert numbers == list(range(1, len(numbers) + 1)), f"{mid}: versions {numbers} repeat or skip a number"
    assert counts() == expected  # nothing counted twice after the dust settled
