"""The worker's own evidence beside the agents' reports: a fleet that reports no losses leaves a
canary nothing to be judged by but the worker's paired scores of it and the champion on the fresh
tasks that stream in. An operator rolls out the first, barely trained version over a trained
champion; the worker rolls it back on that evidence (cause ``heldout_test``), within 60 s, before
the stages' timeouts would have promoted it for want of the agents' evidence."""

import asyncio
import threading

from streams.kafka.topics import read_records
from streams.records.wire import Cause, DecisionType
from streams.simulation.fleet import SineFleet

from .conftest import publish_rounds, publish_until, wait_for
from .test_operator_keys import cli


def test_a_version_worse_on_the_stream_s_own_tasks_is_rolled_back_without_any_agent_s_report(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="40", METASTREAM_UPDATE_ITERATIONS="300").start()

    def trained():
        return worker.metrics().get("metastream_versions_published_total", 0) >= 4

    publish_until(broker.bootstrap, SineFleet(seed=41), "sine", trained, drifted=False, tries=40)
    wait_for(trained, 180, "four published versions")

    stop = threading.Event()

    def stream():  # tasks go on arriving; no agent reports a loss of any version
        fleet = SineFleet(seed=42)
        while not stop.is_set():
            publish_rounds(broker.bootstrap, fleet, "sine", rounds=1, drift_from=1)

    publisher = threading.Thread(target=stream, daemon=True)
    publisher.start()
    try:
        asked = cli(broker.bootstrap, "rollout", "start", "sine", "--version", "1", "--wait", "--timeout", "60")
        assert asked.returncode == 0 and "RolloutStarted v1" in asked.stderr, asked.stderr[-2000:]

        def events():
            return [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]

        def decided():
            moves = (DecisionType.ROLLED_BACK, DecisionType.ROLLOUT_PROMOTED)
            started = [e for e in events() if e["version"] == 1 and e["event_type"] == DecisionType.ROLLOUT_STARTED]
            return [e for e in events() if e["version"] == 1 and e["event_type"] in moves and started
                    and e["timestamp_ms"] >= started[-1]["timestamp_ms"]], started

        (decision, *_), started = wait_for(lambda: decided()[0] and decided(), 120, "a decision on v1's rollout")
    finally:
        stop.set()
        publisher.join(60)
    assert decision["event_type"] == DecisionType.ROLLED_BACK and Cause(decision["cause"]) is Cause.HELDOUT_TEST, decision
    figures = decision["figures"]
    assert figures["n_canary"] == 0  # no agent reported: the worker's own evidence decided
    assert figures["heldout_tasks"] >= 30 and figures["heldout_low"] > 0, figures
    took = (decision["timestamp_ms"] - started[-1]["timestamp_ms"]) / 1000
    print(f"v1 rolled back {took:.1f}s after its rollout started: {decision['reason']}")
    assert took <= 60, (took, figures)
    assert worker.proc.poll() is None
