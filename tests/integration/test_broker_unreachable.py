"""A worker that cannot reach its broker says so while it cannot (the ``broker_unreachable``
diagnosis and its gauge) and clears it when it can again (``DiagnosisCleared`` with how long it was
open); it then goes on reading the experiences sent meanwhile."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

from streams.client import ExperiencePublisher
from streams.kafka.topics import read_records
from streams.records.wire import DecisionType
from streams.simulation.fleet import SineFleet

from .conftest import ROOT, wait_for

PAUSE_S = 8.0


def test_an_unreachable_broker_is_diagnosed_and_cleared(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="100000", METASTREAM_DIAGNOSE_EVERY_S="1").start()
    fleet = SineFleet(seed=9, points_per_task=20)

    async def publish(tasks: int) -> None:
        async with ExperiencePublisher(broker.bootstrap, linger_ms=5) as pub:
            for _ in range(tasks):
                tid, x, y = fleet.sample_task()
                await pub.publish("sine", x, y, [tid] * len(x))

    asyncio.run(publish(5))
    wait_for(lambda: worker.metrics().get("metastream_experiences_ingested_total") == 100, 30, "the first experiences")
    os.kill(broker.process.pid, signal.SIGSTOP)
    stopped = time.time()
    try:
        seen = wait_for(lambda: worker.metrics().get("metastream_broker_unreachable_seconds", 0) >= 3, PAUSE_S + 10,
                        "the worker's gauge to say the broker does not answer")
        assert seen
        time.sleep(max(PAUSE_S - (time.time() - stopped), 0))  # the fault lasts its time
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
    wait_for(lambda: worker.metrics().get("metastream_broker_unreachable_seconds", 1) == 0, 30, "the gauge back at 0")

    def events():
        return [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]

    def about(kind):
        return [e for e in events() if e["event_type"] == kind and "broker_unreachable" in e["reason"]]

    made = wait_for(lambda: about(DecisionType.DIAGNOSIS_MADE), 30, "the diagnosis on the events topic")
    cleared = wait_for(lambda: about(DecisionType.DIAGNOSIS_CLEARED), 30, "the diagnosis cleared")
    assert made[0]["timestamp_ms"] / 1000 - stopped < PAUSE_S, "diagnosed while the broker was stopped"
    assert PAUSE_S - 4 <= cleared[0]["figures"]["open_s"] <= PAUSE_S + 6, cleared[0]["figures"]
    # an operator sees it, healed, with its timings
    listed = subprocess.run([sys.executable, "-m", "streams.cli", "diagnose", "--json"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, env={**os.environ, "METASTREAM_KAFKA": broker.bootstrap, "PYTHONPATH": str(ROOT)})
    assert listed.returncode == 0, listed.stderr[-2000:]
    faults = json.loads(listed.stdout.strip().splitlines()[-1])["faults"]
    unreachable = [f for f in faults if f["kind"] == "broker_unreachable"]
    assert len(unreachable) == 1 and not unreachable[0]["open"] and unreachable[0]["healed_by"] == "DiagnosisCleared", faults
    asyncio.run(publish(5))  # and it reads on
    wait_for(lambda: worker.metrics().get("metastream_experiences_ingested_total") == 200, 60, "the experiences after the pause")
