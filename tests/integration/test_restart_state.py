"""A restart changes no decision: a worker SIGKILLed after a drift comes back with the same drift
detector (observations fed), the same era and the same forgetting-guard probes per era, rebuilt
from the log (experiences, plus the losses the detector was fed, on ``scores``), whether it
replays the whole log or starts from a snapshot of its state and replays only what came after."""

import asyncio
import time

from streams.simulation.fleet import SineFleet
from streams.kafka.topics import end_offsets

from .conftest import publish_rounds, publish_until, wait_committed, wait_for

WATCHED = ("metastream_drift_observations", "metastream_era", "metastream_experiences_ingested_total")


def _state(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k.startswith(WATCHED) or k.startswith("metastream_guard_probes")}


def _settled(worker, bootstrap: str) -> dict[str, float] | None:
    """The watched state, once the worker has read to the end of the log, no update runs or waits
    (an update's guard probes are part of it), the group has committed what it read, and the state
    reads the same twice, a second apart (tasks still waiting are scored within a quarter second)."""
    def quiet():
        m = worker.metrics()
        if m.get("metastream_consumer_lag_messages", 1) != 0 or m.get("metastream_updates_in_flight", 0) != 0:
            return None
        return _state(m)

    first = quiet()
    if first is None:
        return None
    wait_committed(bootstrap)
    time.sleep(1.0)
    return first if quiet() == first else None


# A champion trained on the old regime before the drift, and updates every 150 tasks: an untrained
# champion, or one updated every 30 tasks, fits the drifted sines about as badly as the old ones
# before the detector is sure of the change, and the alarm may not come (see test_audit_rebuild.py).
PACE = {"METASTREAM_NEW_TASKS_TRIGGER": "150"}


def _drifted_worker(broker, worker_factory, **env):
    worker = worker_factory(**PACE, **env).start()
    fleet = SineFleet(seed=5)
    assert publish_until(broker.bootstrap, fleet, "sine", lambda: worker.metrics().get("metastream_versions_published_total", 0) >= 3,
                         drifted=False, tries=30), "three versions before the drift"
    publish_until(broker.bootstrap, fleet, "sine", lambda: worker.metrics().get("metastream_era", 0) >= 1, drifted=True, tries=30)
    wait_for(lambda: worker.metrics().get("metastream_era", 0) >= 1, 60, "a drift alarm (era 1)")
    # tasks of the new era: an alarm raised by the last round's tasks leaves era 1 without a probe
    publish_until(broker.bootstrap, fleet, "sine", lambda: any(k.startswith("metastream_guard_probes") and 'era="1"' in k
                                                               for k in worker.metrics()), drifted=True, tries=10, rounds=1)
    before = wait_for(lambda: _settled(worker, broker.bootstrap), 60, "the worker to settle")
    assert before["metastream_drift_observations"] > 100, before
    assert any(k.startswith("metastream_guard_probes") and 'era="1"' in k for k in before), before
    return worker, before


def test_a_restart_rebuilds_detector_eras_and_probes_exactly(broker, worker_factory):
    first, before = _drifted_worker(broker, worker_factory, METASTREAM_SNAPSHOT_EVERY_S="0")
    wait_committed(broker.bootstrap)  # a restart replays exactly what was committed
    first.kill()
    second = worker_factory(**PACE, METASTREAM_SNAPSHOT_EVERY_S="0").start()
    after = wait_for(lambda: _settled(second, broker.bootstrap), 60, "the restarted worker to settle")
    assert after == before
    assert second.metrics()["metastream_rebuild_from_snapshot"] == 0  # no snapshot was taken: the whole log


def test_a_restart_from_a_snapshot_replays_only_what_came_after_it_and_rebuilds_the_same(broker, worker_factory):
    first, before = _drifted_worker(broker, worker_factory, METASTREAM_SNAPSHOT_EVERY_S="1")
    taken = first.metrics().get("metastream_snapshots_total", 0)
    wait_for(lambda: first.metrics().get("metastream_snapshots_total", 0) > taken + 1, 30, "a snapshot of the settled state")
    wait_committed(broker.bootstrap)
    first.kill()

    # the second worker takes no snapshot of its own: it starts from the first one's, then learns on
    second = worker_factory(**PACE, METASTREAM_SNAPSHOT_EVERY_S="0").start()
    assert wait_for(lambda: _settled(second, broker.bootstrap), 60, "the second worker to settle") == before
    assert second.metrics()["metastream_rebuild_from_snapshot"] == 1
    assert second.metrics()["metastream_rebuild_messages"] == 0  # the snapshot held everything committed
    ends = asyncio.run(end_offsets(broker.bootstrap, "experiences"))
    publish_rounds(broker.bootstrap, SineFleet(seed=6), "sine", rounds=3, drift_from=0)
    later = wait_for(lambda: _settled(second, broker.bootstrap), 60, "the second worker to settle again")
    # read once the worker has read everything: right after the writes the embedded broker's end offsets may lag
    written = sum(asyncio.run(end_offsets(broker.bootstrap, "experiences")).values()) - sum(ends.values())
    assert later["metastream_drift_observations"] > before["metastream_drift_observations"]
    wait_committed(broker.bootstrap)
    second.kill()

    # the third starts from the same snapshot and replays the three rounds' messages after it
    third = worker_factory(**PACE, METASTREAM_SNAPSHOT_EVERY_S="0").start()
    assert wait_for(lambda: _settled(third, broker.bootstrap), 60, "the third worker to settle") == later
    assert third.metrics()["metastream_rebuild_from_snapshot"] == 1
    # it replays what came after the snapshot, not the whole log (how many exactly depends on what the
    # group had committed when each worker was killed: the embedded broker's end offsets, which the
    # wait for commits reads, can lag a few messages behind its writes)
    total = sum(asyncio.run(end_offsets(broker.bootstrap, "experiences")).values())
    assert 0 < third.metrics()["metastream_rebuild_messages"] < total - written  # fewer than the history before it
