"""A bad version is caught at any fleet size: with only 10 agents, the version after a few good
ones does three times worse for the agents that are served it; the rollout's first stage still
holds enough of them to judge it (a floor on agents), and it is rolled back within 60 s of its
rollout's start, with every agent served the champion again."""

import asyncio
import threading
import time

from streams.client import ExperiencePublisher, ModelSubscriber
from streams.kafka.topics import read_records
from streams.records.wire import Cause, DecisionType
from streams.simulation.fleet import SineFleet, publish_served_tasks

from .conftest import wait_for

AGENTS = 10


class SmallFleet:
    """10 agents in a thread: they use what they are served and report; the first canary after
    ``arm()`` is the bad version (their reported losses three times what they are)."""

    def __init__(self, bootstrap: str, rate: float = 400.0) -> None:
        self.bootstrap, self.rate = bootstrap, rate
        self.stop, self.armed = threading.Event(), threading.Event()
        self.faults: dict[int, float] = {}
        self.bad: int | None = None
        self.skip: int | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def run(self) -> None:
        fleet = SineFleet(seed=31)
        async with ModelSubscriber(self.bootstrap) as sub, ExperiencePublisher(self.bootstrap, linger_ms=20) as pub:
            self.sub = sub
            while not self.stop.is_set():
                tick = time.monotonic()
                await sub.poll(20)
                aliases = sub.aliases.get("sine")
                canary = aliases.canary if aliases is not None else None
                if self.armed.is_set() and self.bad is None and canary is not None and canary != self.skip:
                    self.bad, self.faults[canary] = canary, 3.0
                await publish_served_tasks(pub, fleet, sub, self.rate * 0.1, "sine", agents=AGENTS, faults=self.faults)
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))


def test_a_bad_version_is_rolled_back_within_60_s_with_10_agents(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="40", METASTREAM_UPDATE_ITERATIONS="40").start()
    fleet = SmallFleet(broker.bootstrap)
    fleet.thread.start()
    try:
        def events():
            return [rec for _, rec in asyncio.run(read_records(broker.bootstrap, "events", "DecisionEvent"))]

        # a few versions judged on the agents' evidence first: the rollouts start at a stage, not at once
        wait_for(lambda: len([e for e in events() if e["event_type"] == DecisionType.ROLLOUT_STARTED]) >= 2, 180,
                 "rollouts that start at a stage")
        fleet.skip = fleet.sub.aliases["sine"].canary if "sine" in fleet.sub.aliases else None
        fleet.armed.set()
        bad = wait_for(lambda: fleet.bad, 180, "the next canary (the bad version)")

        def decided():
            moves = (DecisionType.ROLLED_BACK, DecisionType.ROLLOUT_PROMOTED)
            return [e for e in events() if e["version"] == bad and e["event_type"] in moves]

        decision = wait_for(decided, 120, f"a decision on v{bad}")[0]
        started = [e for e in events() if e["version"] == bad and e["event_type"] == DecisionType.ROLLOUT_STARTED][0]
        assert decision["event_type"] == DecisionType.ROLLED_BACK, decision
        assert Cause(decision["cause"]) in (Cause.SEQUENTIAL_TEST, Cause.ERROR_GUARDRAIL), decision
        took = (decision["timestamp_ms"] - started["timestamp_ms"]) / 1000
        print(f"v{bad} rolled back {took:.1f}s after its rollout started at {started['rollout']}: {decision['reason']}")
        assert took <= 60, (took, decision["figures"], started["figures"])
        assert started["figures"]["reporting_agents"] <= AGENTS
        wait_for(lambda: all(fleet.sub.version_for("sine", f"agent-{a}") != bad for a in range(AGENTS)), 30,
                 "every agent served the champion again")
    finally:
        fleet.stop.set()
        fleet.thread.join(30)
    assert worker.proc.poll() is None
