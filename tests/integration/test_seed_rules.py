"""The seed's three self-diagnosis rules, each triggered on a real worker with its remedy seen to
take effect: the worker's resident memory above 80% of its budget -> the replay buffers give up
half of what they hold, the memory falls back and the diagnosis clears; the champion's reported p95 latency above 50 ms -> a student distilled from it is
published and, once agents are served it, the latency falls back (cleared); the champion's held-out
error trending up by more than 5% -> a retrain runs on recent data, and once the error comes back the
diagnosis clears."""

import asyncio
import json
import threading
import time

import pytest

from streams.client import ExperiencePublisher, ModelSubscriber
from streams.kafka.topics import read_records
from streams.records.wire import Cause, DecisionType
from streams.simulation.fleet import DigitFleet, SineFleet, publish_served_tasks, publish_tasks

from .conftest import publish_rounds, publish_until, wait_for


def _events(bootstrap: str) -> list[dict]:
    return [rec for _, rec in asyncio.run(read_records(bootstrap, "events", "DecisionEvent"))]


def _about(bootstrap: str, kind: DecisionType, rule: str) -> list[dict]:
    return [e for e in _events(bootstrap) if e["event_type"] == kind and e["rule"] == rule]


def test_memory_above_80_percent_of_the_budget_halves_the_buffers(broker, worker_factory):
    """The budget is set so that 80% of it lies 120 MiB above what a worker of this machine holds at
    rest (measured on a first one): the digit tasks it buffers cross it."""
    env = dict(METASTREAM_MODELS=json.dumps({"digits": "digits"}), METASTREAM_BUFFER_MB="512",
               METASTREAM_NEW_TASKS_TRIGGER="1000000", METASTREAM_DIAGNOSE_EVERY_S="1")
    first = worker_factory(**env).start()
    at_rest = _settled_memory(first)
    first.stop()
    budget_mb = (at_rest + 120 * 2**20) / 0.8 / 2**20
    worker = worker_factory(**env, METASTREAM_MEMORY_MB=f"{budget_mb:.1f}").start()
    _settled_memory(worker)
    fleet = DigitFleet(seed=41)

    def pressed() -> list[dict]:
        asyncio.run(_publish_digits(broker.bootstrap, fleet, 200))  # 200 tasks: some 6 MiB buffered
        return _about(broker.bootstrap, DecisionType.DIAGNOSIS_MADE, "memory_pressure")

    made = wait_for(pressed, 240, "memory_pressure as the buffered digits fill the budget", interval=0.0)
    assert made[0]["figures"]["value"] > 0.8
    taken = wait_for(lambda: _about(broker.bootstrap, DecisionType.REMEDIATION_TAKEN, "memory_pressure"), 30, "the remedy")
    figures = taken[0]["figures"]
    assert Cause(taken[0]["cause"]) is Cause.SHRINK and "MiB of tasks evicted" in taken[0]["reason"], taken[0]
    assert figures["used_mb_after"] < figures["used_mb_before"] and figures["budget_mb"] == pytest.approx(budget_mb, abs=0.1), figures
    assert figures["bound_after_digits"] < 256 * 2**20  # at most half of the 512 MiB bound: the buffer stays smaller
    cleared = wait_for(lambda: _about(broker.bootstrap, DecisionType.DIAGNOSIS_CLEARED, "memory_pressure"), 30, "the diagnosis cleared")
    assert cleared[0]["figures"]["value"] <= 0.8
    wait_for(lambda: worker.metrics()["metastream_buffer_bound_bytes"] == figures["bound_after_digits"], 10, "the bound kept")


def _settled_memory(worker) -> float:
    """The worker's memory once its update processes have started (they import torch after the
    worker is ready): two readings 3 s apart within 4 MiB of each other."""
    readings = []

    def settled():
        readings.append(worker.metrics().get("metastream_memory_used_bytes", 0.0))
        return len(readings) > 1 and abs(readings[-1] - readings[-2]) < 4 * 2**20 and readings[-1]

    return wait_for(settled, 90, "the worker's memory to settle", interval=3.0)


async def _publish_digits(bootstrap: str, fleet: DigitFleet, tasks: int) -> None:
    async with ExperiencePublisher(bootstrap, linger_ms=5) as pub:
        await publish_tasks(pub, fleet, tasks * fleet.ways * fleet.per_class, "digits")


class SlowUnlessDistilled(dict):
    """Once armed, every version predicts 60 ms slower on the agents' side except the students
    distilled after that (``fast``): only the remedy itself can bring the latency back."""

    def __init__(self) -> None:
        super().__init__()
        self.armed, self.fast = False, set()

    def get(self, version, default=0.0):
        return 60.0 if self.armed and version not in self.fast else default

    def __bool__(self) -> bool:  # an empty dict is false: the fleet would take it for no faults at all
        return True


class ServedFleet:
    """Agents in a thread that use the version they are served and report losses and latencies."""

    def __init__(self, bootstrap: str, rate: float = 400.0) -> None:
        self.bootstrap, self.rate, self.stop, self.slow = bootstrap, rate, threading.Event(), SlowUnlessDistilled()
        self.sub = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def run(self) -> None:
        fleet = SineFleet(seed=43)
        async with ModelSubscriber(self.bootstrap) as sub, ExperiencePublisher(self.bootstrap, linger_ms=20) as pub:
            self.sub = sub
            while not self.stop.is_set():
                tick = time.monotonic()
                await sub.poll(20)
                await publish_served_tasks(pub, fleet, sub, self.rate * 0.1, "sine", agents=20, slow=self.slow)
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))


def test_a_slow_champion_is_replaced_by_a_distilled_student(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="60", METASTREAM_DIAGNOSE_EVERY_S="1").start()
    fleet = ServedFleet(broker.bootstrap)
    fleet.thread.start()
    try:
        wait_for(lambda: fleet.sub is not None and "sine" in fleet.sub.aliases and fleet.sub.aliases["sine"].champion,
                 120, "a champion served to the agents")
        fleet.slow.armed = True
        made = wait_for(lambda: _about(broker.bootstrap, DecisionType.DIAGNOSIS_MADE, "slow_inference"), 90, "slow_inference")
        assert made[0]["figures"]["value"] > 50

        def students():
            found = {e["version"] for e in _events(broker.bootstrap) if e["event_type"] == DecisionType.VERSION_PUBLISHED
                     and Cause(e["cause"]) is Cause.DISTIL}
            fleet.slow.fast |= found
            return found

        try:
            wait_for(students, 120, "a distilled student published")
        except AssertionError:  # what the worker did instead, for whoever reads the failure
            raise AssertionError([(e["event_type"], e["cause"], e["version"], e["reason"][:160]) for e in _events(broker.bootstrap)
                                  if e["timestamp_ms"] >= made[0]["timestamp_ms"]]) from None
        try:
            cleared = wait_for(lambda: students() and _about(broker.bootstrap, DecisionType.DIAGNOSIS_CLEARED, "slow_inference"),
                               180, "the latency back under its bound")
        except AssertionError:
            raise AssertionError([(e["event_type"], e["cause"], e["version"], e["reason"][:160]) for e in _events(broker.bootstrap)
                                  if e["timestamp_ms"] >= made[0]["timestamp_ms"]]) from None
        assert cleared[0]["figures"]["value"] <= 50
        rolled = [e for e in _events(broker.bootstrap) if e["version"] in fleet.slow.fast
                  and e["event_type"] in (DecisionType.ROLLOUT_STARTED, DecisionType.ROLLOUT_PROMOTED)]
        assert rolled, "the student was served to the agents"
    finally:
        fleet.stop.set()
        fleet.thread.join(30)
    assert worker.proc.poll() is None


def test_an_error_trending_up_asks_for_a_retrain(broker, worker_factory):
    # the mechanism under test is signal -> diagnosis -> retrain -> cleared, not the rule's calibration
    # (trend.py documents that): a drift here is answered by a drift update within a few updates, so
    # the rise is brief; a window of 6 and a t of 2 see it (the defaults, 16 and 3.5, are for a decline
    # that lasts, with few false alarms)
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="30", METASTREAM_DIAGNOSE_EVERY_S="1", METASTREAM_SEARCH_WINDOW="6",
                            METASTREAM_SEARCH_TREND_T="2").start()
    fleet = SineFleet(seed=45)
    def three_versions() -> bool:
        return worker.metrics().get("metastream_versions_published_total", 0) >= 3

    publish_until(broker.bootstrap, fleet, "sine", three_versions, drifted=False, tries=40)  # at the worker's pace, not a count of rounds
    wait_for(three_versions, 60, "versions before the drift")

    def trend_found():  # the new regime's tasks are held out by the next updates: the champion's error on them rises
        publish_rounds(broker.bootstrap, fleet, "sine", rounds=2, drift_from=0)
        return _about(broker.bootstrap, DecisionType.DIAGNOSIS_MADE, "accuracy_trend")

    made = wait_for(trend_found, 300, "accuracy_trend", interval=0.1)
    assert made[0]["figures"]["value"] > 0.05
    taken = wait_for(lambda: _about(broker.bootstrap, DecisionType.REMEDIATION_TAKEN, "accuracy_trend"), 30, "the retrain asked for")
    assert Cause(taken[0]["cause"]) is Cause.RETRAIN
    # an update on recent data runs after it (its own, or a drift update it was merged into while one was pending)
    wait_for(lambda: [e for e in _events(broker.bootstrap) if e["event_type"] == DecisionType.UPDATE_STARTED
                      and e["timestamp_ms"] >= taken[0]["timestamp_ms"]], 60, "an update after the retrain was asked for")

    def cleared():  # the updates on the new regime bring the error back
        publish_rounds(broker.bootstrap, fleet, "sine", rounds=2, drift_from=0)
        return _about(broker.bootstrap, DecisionType.DIAGNOSIS_CLEARED, "accuracy_trend")

    done = wait_for(cleared, 300, "the accuracy_trend diagnosis cleared", interval=0.1)
    assert done[0]["figures"]["value"] <= 0.05
