"""A worker killed with SIGKILL mid-stream and restarted loses no experience: every event id is
counted exactly once in the learner's accounting, and no version number is published twice."""

import asyncio
import os
import signal
import threading


from schemas import codec_for
from schemas.experiences import id_columns
from streams.client import ExperiencePublisher
from streams.simulation.fleet import SineFleet
from streams.kafka.topics import read_range, read_records
from streams.records.wire import DecisionType

from .conftest import wait_committed, wait_for



def test_sigkill_and_restart_count_each_event_once(broker, worker_factory):
    env = {"METASTREAM_NEW_TASKS_TRIGGER": "25", "METASTREAM_UPDATE_ITERATIONS": "20"}
    first = worker_factory(**env).start()
    fleet = SineFleet(seed=3, points_per_task=20)
    sent_ids: list[str] = []
    resent = 0

    async def publish(tasks: int, pause: float):
        nonlocal resent
        async with ExperiencePublisher(broker.bootstrap, batch_size=32, linger_ms=5) as pub:
            for i in range(tasks):
                tid, x, y = fleet.sample_task()
                ids = [f"{tid}-{k}" for k in range(len(x))]
                await pub.publish("sine", x, y, [tid] * len(x), event_ids=ids)
                sent_ids.extend(ids)
                if i % 10 == 0:  # a producer retry: the same experiences again
                    await pub.publish("sine", x[:5], y[:5], [tid] * 5, event_ids=ids[:5])
                    resent += 5
                await asyncio.sleep(pause)

    publisher = threading.Thread(target=lambda: asyncio.run(publish(240, 0.01)))
    publisher.start()
    wait_for(lambda: first.metrics().get("metastream_experiences_ingested_total", 0) > 1500, 60, "the first worker to ingest")
    first.kill()
    publisher.join()

    async def event_ids_on_topic():
        batches = codec_for("ExperienceBatch")
        return {eid async for m in read_range(broker.bootstrap, "experiences") for eid in id_columns(batches.decode(m.value))[0]}

    on_topic = asyncio.run(event_ids_on_topic())
    assert on_topic == set(sent_ids)  # at-least-once: every experience sent reached the topic
    unique = len(on_topic)

    second = worker_factory(**env).start()
    seen = []
    try:
        final = wait_for(lambda: seen.append(second.metrics()) or seen[-1].get("metastream_experiences_ingested_total") == unique,
                         90, f"the restarted worker to account for all {unique} events")
    except AssertionError:
        raise AssertionError(f"restarted worker's metrics: {seen[-1]}") from None
    del seen
    wait_committed(broker.bootstrap)  # everything on the log was read and committed: nothing more arrives
    again = second.metrics()
    assert again["metastream_experiences_ingested_total"] == unique
    assert again["metastream_experiences_duplicate_total"] >= resent  # retries (and re-deliveries) were recognised

    async def versions():
        return [codec_for("ModelVersion").decode(m.value) async for m in read_range(broker.bootstrap, "models")]

    # the restarted worker's first update runs in its update process (started cold, on a loaded
    # machine it takes a while), so the version is waited for, not read once
    published = [(r["model_id"], r["version"]) for r in wait_for(lambda: asyncio.run(versions()), 90, "the workers to publish a version")]
    assert len(published) == len(set(published)), f"a version number was published twice: {published}"
    numbers = [v for _, v in published]
    assert numbers == sorted(numbers)
    del final

    # the product found the crash itself: the restarted worker says so, with the gap and what it replayed
    restarts = [e for e in _events(broker.bootstrap) if e["event_type"] == DecisionType.WORKER_RESTARTED]
    assert len(restarts) == 1 and restarts[0]["cause"] == "crash", restarts
    figures = restarts[0]["figures"]
    # what it replayed is what the killed worker had committed: on a slow machine that can be nothing yet
    assert figures["predecessor_pid"] == first.proc.pid and figures["gap_s"] >= 0, figures
    assert figures["messages_replayed"] == again["metastream_rebuild_messages"], (figures, again)


def test_a_clean_stop_is_not_reported_as_a_crash(broker, worker_factory):
    first = worker_factory().start()
    first.stop()  # SIGTERM: the worker shuts down cleanly and removes its mark
    assert first.proc.returncode is not None
    second = worker_factory().start()
    wait_for(lambda: second.metrics().get("metastream_worker_ready") == 1.0, 30, "the second worker")
    second.kill()
    third = worker_factory().start()  # after a SIGKILL it is
    restarts = wait_for(lambda: [e for e in _events(broker.bootstrap) if e["event_type"] == DecisionType.WORKER_RESTARTED], 30,
                        "the third worker to report the second one's crash")
    assert len(restarts) == 1 and restarts[0]["figures"]["predecessor_pid"] == second.proc.pid, restarts
    third.stop()


def _events(bootstrap: str) -> list[dict]:
    return [rec for _, rec in asyncio.run(read_records(bootstrap, "events", "DecisionEvent"))]


def _stat(pid: int) -> list[str] | None:
    """State and parent of a live (not zombie) process, from /proc (this test runs on Linux)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if fields[0] != "Z" else None


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid``."""
    parents = {int(e): int(f[1]) for e in os.listdir("/proc") if e.isdigit() and (f := _stat(int(e)))}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_a_sigkilled_worker_leaves_no_process_behind(broker, worker_factory):
    worker = worker_factory().start()
    children = wait_for(lambda: (lambda c: c if len(c) >= 2 else None)(_children(worker.proc.pid)), 60,
                        "the update processes and the resource tracker")
    os.kill(worker.proc.pid, signal.SIGKILL)  # the worker alone, not its process group
    worker.proc.wait(10)
    wait_for(lambda: not any(_stat(p) for p in children) or None, 15, "the children to end with the worker")
