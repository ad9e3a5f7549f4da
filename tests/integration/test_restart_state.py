"""A restart changes no decision: a worker SIGKILLed after a drift comes back with the same drift
detector (observations fed), the same era and the same forgetting-guard probes per era, rebuilt
from the log (experiences, plus the losses the detector was fed, on ``scores``)."""

import time

from streams.fleet import SineFleet

from .conftest import publish_rounds, wait_for

WATCHED = ("metastream_drift_observations", "metastream_era", "metastream_experiences_ingested_total")


def _state(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k.startswith(WATCHED) or k.startswith("metastream_guard_probes")}


def _settled(worker) -> dict[str, float] | None:
    """The watched state, once it no longer changes over 2 s (everything sent was taken)."""
    first = _state(worker.metrics())
    time.sleep(2)
    return first if first == _state(worker.metrics()) else None


def test_a_restart_rebuilds_detector_eras_and_probes_exactly(broker, worker_factory):
    first = worker_factory().start()
    publish_rounds(broker.bootstrap, SineFleet(seed=5), "sine", rounds=24, drift_from=12)
    wait_for(lambda: first.metrics().get("metastream_era", 0) >= 1, 60, "a drift alarm (era 1)")
    before = wait_for(lambda: _settled(first), 60, "the worker to settle")
    time.sleep(2)  # offsets committed (every second), score records flushed
    first.kill()
    assert before["metastream_drift_observations"] > 100, before
    assert any(k.startswith("metastream_guard_probes") and 'era="1"' in k for k in before), before
    second = worker_factory().start()
    after = wait_for(lambda: _settled(second), 60, "the restarted worker to settle")
    assert after == before
