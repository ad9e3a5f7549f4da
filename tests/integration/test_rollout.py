"""Rollouts on the embedded broker with a real worker and real subscribers: simulated agents use
the version their cohort is served and report their losses with it. A good version goes from 5% through
25% and 50% to champion with no person (passing the 50% stage promotes it); a bad one (an early version, asked for by an operator) is rolled back at 5%
and its cohort is back on the champion; the cohort split matches the share; a restarted worker
resumes the rollout where it was."""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

from streams.client import ExperiencePublisher, ModelSubscriber
from streams.simulation.fleet import SineFleet, publish_served_tasks
from streams.records.wire import Cause, DecisionType
from streams.records.cohorts import cohort
from streams.records.aliases import aliases_from_events
from streams.kafka.topics import read_records

from .conftest import ROOT, wait_for

ENV = {"METASTREAM_ROLLOUT_MIN_SAMPLES": "15", "METASTREAM_ROLLOUT_EVIDENCE_TIMEOUT_S": "120",
       "METASTREAM_NEW_TASKS_TRIGGER": "40", "METASTREAM_UPDATE_ITERATIONS": "40"}


def events(bootstrap):
    return [rec for _, rec in asyncio.run(read_records(bootstrap, "events", "DecisionEvent"))]


class Fleet:
    """Agents publishing served, reported tasks in a thread until stopped."""

    def __init__(self, bootstrap: str, rate: float = 800.0, faults: dict[int, float] | None = None) -> None:
        self.bootstrap, self.rate, self.stop, self.paused = bootstrap, rate, threading.Event(), threading.Event()
        self.faults = faults  # versions that do worse in production: version -> factor on their losses
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def run(self) -> None:
        fleet = SineFleet(seed=11)
        async with ModelSubscriber(self.bootstrap) as sub, ExperiencePublisher(self.bootstrap, linger_ms=20) as pub:
            while not self.stop.is_set():
                tick = time.monotonic()
                await sub.poll(20)
                if not self.paused.is_set():
                    await publish_served_tasks(pub, fleet, sub, self.rate * 0.1, "sine", agents=200, faults=self.faults)
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


async def served_versions(bootstrap: str, agents: list[str]) -> dict[str, int | None]:
    """The version a subscriber serves each agent (its cohort's), once it has read the log."""
    async with ModelSubscriber(bootstrap) as sub:
        await sub.latest("sine", timeout=30)
        for _ in range(5):
            await sub.poll(200)
        return {a: sub.version_for("sine", a) for a in agents}


def cli(bootstrap, *args):
    env = {**os.environ, "METASTREAM_KAFKA": bootstrap, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def rollout_events(bootstrap: str) -> str:
    """The last rollout decisions, one line each with their figures (what a failure shows)."""
    t0 = None
    lines = []
    for e in events(bootstrap):
        t0 = t0 or e["timestamp_ms"]
        if e["event_type"].startswith(("Rollout", "RolledBack", "VersionPublished", "VersionRejected")):
            figures = {k: round(v, 3) for k, v in e["figures"].items()
                       if k in ("n_canary", "n_champion", "low", "high", "stage_rows", "estimate")}
            if e["rollout"] is not None:
                figures["share"] = e["rollout"]["share"]
            lines.append(f"{(e['timestamp_ms'] - t0) / 1000:6.1f}s {e['event_type']} v{e['version']} {e['cause']}: "
                         f"{e['reason'][:80]} {figures}")
    return "\n".join(lines[-25:])


def test_rollouts_promote_good_versions_roll_back_bad_ones_and_survive_a_restart(broker, worker_factory):
    worker = worker_factory(**ENV).start()
    with Fleet(broker.bootstrap, faults={1: 3.0}) as fleet:  # the first version does badly in production
        # a good version goes 5 -> 25 -> 50% -> champion on the agents' evidence, with no person
        def promoted_by_test():
            return [e for e in events(broker.bootstrap) if e["event_type"] == DecisionType.ROLLOUT_PROMOTED
                    and Cause(e["cause"]) is Cause.SEQUENTIAL_TEST]
        started = time.monotonic()
        try:
            first = wait_for(promoted_by_test, 150, "a version promoted by the sequential test")[0]
        except AssertionError:
            raise AssertionError("no version promoted by the sequential test in 150 s; the rollout events:\n"
                                 + rollout_events(broker.bootstrap) + "\nthe worker's log:\n"
                                 + worker.log.read_text()[-3000:]) from None
        print(f"first promotion by the sequential test after {time.monotonic() - started:.0f} s:\n"
              + rollout_events(broker.bootstrap))
        trail = [e for e in events(broker.bootstrap) if e["version"] == first["version"]]
        shares = [e["rollout"]["share"] for e in trail if e["event_type"] in (DecisionType.ROLLOUT_STARTED,
                                                                               DecisionType.ROLLOUT_ADVANCED)]
        # it starts at the smallest stage whose cohort holds 3 of the agents seen reporting and gathers
        # the evidence in time (early on few agents have reported), then takes every stage after it
        # short of everyone: passing 50% is the promotion (at 100% no champion would be left to compare with)
        start = next(e for e in trail if e["event_type"] == DecisionType.ROLLOUT_STARTED)["figures"]
        stages = [5.0, 25.0, 50.0, 100.0]
        need = max(5.0, start["share_for_agents"], start["share_for_evidence"])
        assert shares == stages[stages.index(min(s for s in stages if s >= need)):-1], (shares, start)
        assert len(shares) >= 2  # at least one stage judged on the agents' losses before everyone got it

        # the cohort split: during a rollout, the canary's share of agents is the configured one
        def rolling():
            a = aliases_from_events(events(broker.bootstrap))["sine"]
            return a if a.canary is not None and a.stage >= 1 else None
        aliases = wait_for(rolling, 120, "a rollout past its first stage")
        fleet.paused.set()  # nothing moves the rollout on while the subscriber looks
        agents = [f"agent-{k}" for k in range(200)] + [f"probe-{i}" for i in range(4000)]
        served = asyncio.run(served_versions(broker.bootstrap, agents))
        now = aliases_from_events(events(broker.bootstrap))["sine"]
        assert now.canary == aliases.canary and now.share == aliases.share
        # an agent is served the canary exactly when its cohort is below the share, and that is the share of agents
        assert all((served[a] == now.canary) == (cohort(a, "sine") < now.share) for a in agents)
        assert {served[a] for a in agents} == {now.canary, now.champion}
        on_canary = sum(served[a] == now.canary for a in agents[200:]) / 4000
        sd = (now.share / 100 * (1 - now.share / 100) / 4000) ** 0.5
        assert abs(on_canary - now.share / 100) < 4 * sd, (on_canary, now.share)
        fleet.paused.clear()

        # a restart resumes the rollout where it was: same canary, no new start for it (the agents
        # pause meanwhile, so nothing new can move the rollout on while we look)
        fleet.paused.set()
        wait_for(lambda: (lambda n: time.sleep(4) or len(events(broker.bootstrap)) == n)(len(events(broker.bootstrap))), 60,
                 "the events to settle")
        before = json.loads(cli(broker.bootstrap, "rollout", "status", "sine", "--json").stdout)
        worker.kill()
        worker = worker_factory(**ENV).start()
        # the restarted worker has rebuilt its models to the newest version (a rollout it restarted would show below)
        newest = max(rec["version"] for _, rec in asyncio.run(read_records(broker.bootstrap, "models", "ModelVersion")))
        wait_for(lambda: worker.metrics().get("metastream_champion_version") == newest, 30, "the rebuilt newest version")
        after = json.loads(cli(broker.bootstrap, "rollout", "status", "sine", "--json").stdout)
        fleet.paused.clear()
        assert (after["canary"], after["stage"], after["champion"]) == (before["canary"], before["stage"], before["champion"])
        canary = before["canary"]
        if canary is not None:
            def moved_on():
                trail = [e for e in events(broker.bootstrap) if e["version"] == canary]
                return trail if any(e["event_type"] in (DecisionType.ROLLOUT_PROMOTED, DecisionType.ROLLED_BACK,
                                                        DecisionType.ROLLOUT_ADVANCED) and e["timestamp_ms"] > after["history"][-1]["at_ms"]
                                    for e in trail) else None
            trail = wait_for(moved_on, 120, "the rollout to go on after the restart")
            assert sum(e["event_type"] == DecisionType.ROLLOUT_STARTED for e in trail) == 1  # not started again

        # a bad version (the first, whose agents report three times the loss) asked for by an operator
        # is rolled back at 5%
        champion = wait_for(lambda: aliases_from_events(events(broker.bootstrap))["sine"].champion or None, 30, "a champion")
        assert champion >= 2
        # the evidence at 5% comes from a twentieth of the agents: at the fleet's 20 tasks/s, one task a
        # second; four times the rate gives the sequential test its rows four times sooner (measured:
        # the rollback after 48 canary rows, 31 s, beside another test on 2 cores)
        fleet.rate *= 4
        missing = cli(broker.bootstrap, "rollout", "start", "sine", "--version", "999")
        assert missing.returncode == 2 and "sine v999 is not published" in missing.stderr, missing.stderr[-2000:]
        started = cli(broker.bootstrap, "rollout", "start", "sine", "--version", "1", "--wait", "--timeout", "50")
        assert started.returncode == 0 and "the worker decided: RolloutStarted v1" in started.stderr, started.stderr[-2000:]

        def decided():  # the first decision on v1 after its start: rolled back, or (wrongly) advanced
            evs = events(broker.bootstrap)
            started = [i for i, e in enumerate(evs) if e["event_type"] == DecisionType.ROLLOUT_STARTED and e["version"] == 1]
            moves = (DecisionType.ROLLED_BACK, DecisionType.ROLLOUT_ADVANCED, DecisionType.ROLLOUT_PROMOTED)
            done = [e for e in evs[started[-1]:] if e["event_type"] in moves and e["version"] == 1] if started else []
            return done[0] if done else None

        try:  # longer than the evidence timeout (120 s), so that a stage advanced for want of evidence shows as such
            back = wait_for(decided, 180, "a decision on the bad version")
        except AssertionError:
            raise AssertionError("no decision on v1 in 180 s; the last rollout events:\n" + rollout_events(broker.bootstrap)
                                 + "\nthe worker's log:\n" + worker.log.read_text()[-3000:]) from None
        assert back["event_type"] == DecisionType.ROLLED_BACK, rollout_events(broker.bootstrap)
        assert Cause(back["cause"]) in (Cause.SEQUENTIAL_TEST, Cause.LATENCY_GUARDRAIL, Cause.ERROR_GUARDRAIL)
        assert back["figures"]["canary_mean_loss"] > back["figures"]["champion_mean_loss"]
        stage_changes = [e for e in events(broker.bootstrap) if e["version"] == 1 and e["event_type"] == DecisionType.ROLLOUT_ADVANCED]
        assert not stage_changes  # caught at 5%

        # an explicit A/B test of the champion against the first version stops itself when decided
        champion = aliases_from_events(events(broker.bootstrap))["sine"].champion
        done = cli(broker.bootstrap, "ab", "start", "sine", "--a", str(champion), "--b", "1", "--split", "50", "--timeout", "150",
                   "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["outcome"] == "decided" and result["effect"] > 0 and result["low"] > 0  # b (v1) has the higher loss
        assert (result["a"], result["b"], result["split"]) == (champion, 1, 50.0)
        assert result["n_a"] > 0 and result["n_b"] > 0 and result["e_value"] >= 20 and result["p_value"] <= 0.05
    # and the agents of that cohort are served the champion again
    async def served():
        async with ModelSubscriber(broker.bootstrap) as sub:
            await sub.latest("sine", timeout=30)
            for _ in range(5):
                await sub.poll(200)
            return {sub.version_for("sine", f"agent-{k}") for k in range(200)}
    versions = asyncio.run(served())
    assert 1 not in versions
    assert worker.proc.poll() is None
