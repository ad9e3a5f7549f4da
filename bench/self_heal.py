"""Self-healing, measured on the embedded system: a real worker, a simulated fleet of 40 sine agents
that use the version their cohort is served and report their losses and latencies, and faults
injected one kind at a time, ``--repeats`` times each; then a fault-free control run of the same
length, counting false alarms. Default run about 30 minutes on 2 cores.

A fault is *detected* when the worker says so on the events topic (or, for a crash, when the
process is gone); it is *resolved* when the watched metric is back within 5% of its level before
the fault (or the stated criterion below) within ``--resolve-s`` seconds, with no person acting.
The bench itself plays the supervisor that restarts a crashed worker (as systemd or Kubernetes
would); nothing else it does after injecting a fault.

| fault | injected | detected by | resolved when |
| drift | the sine frequency changes (1 <-> 2) | DriftDetected | a drift-triggered version is champion and the clean agents' loss is 5% below its level at the alarm |
| noisy_agent | a new agent sends random targets | DiagnosisMade noisy_agent | the agent is quarantined and the clean agents' loss is within 5% of before |
| slow_version | the next version rolled out (the next canary) predicts 40 ms slower | its RolledBack (latency guardrail), or DiagnosisMade slow_inference while it is champion | it is no longer served and the served p95 latency is within 5% of before |
| bad_version | the next version rolled out reports three times the loss | its RolledBack (sequential test) | it is no longer served and the clean agents' loss is within 5% of before |
| memory | a burst of 30,000 one-point tasks fills the replay buffer | DiagnosisMade memory_pressure | the buffer is under 80% of its bound (the remedy evicts to half of it) |
| crash | SIGKILL of the worker | the process is gone | the restarted worker counted every experience sent and the loss is within 5% of before |
| broker_pause | SIGSTOP of the broker for 8 s | the publisher's sends stall | every experience sent was counted and the loss is within 5% of before |

    python bench/self_heal.py [--repeats 2] [--kinds drift,bad_version,...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _healing_system import System  # noqa: E402
from _table import print_json, print_table  # noqa: E402

KINDS = ("noisy_agent", "slow_version", "bad_version", "memory", "crash", "broker_pause", "drift")  # drift last: it stays
def within(value: float, reference: float, share: float = 0.05) -> bool:
    return value == value and reference == reference and value <= reference * (1 + share)


async def wait_until(check, timeout: float, every: float = 1.0):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = await check()
        if found:
            return time.monotonic() - started, found
        await asyncio.sleep(every)
    return None, None


def new_events(events: list[dict], since_ms: int, *kinds) -> list[dict]:
    return [e for e in events if e["timestamp_ms"] >= since_ms and e["event_type"] in [k.value for k in kinds]]


async def inject(system: System, kind: str, k: int, events_of):
    """Inject one fault of ``kind``; returns the check (async, no arguments) that finds it detected."""
    from streams.records.wire import Cause, DecisionType as D

    if kind == "drift":
        system.fleet.drift(not system.fleet.drifted)
        return lambda: events_of(D.DRIFT_DETECTED)
    if kind == "noisy_agent":
        system.noisy.add(f"noisy-{k}")

        async def noisy_named():
            return [e for e in await events_of(D.DIAGNOSIS_MADE) if "noisy_agent" in e["reason"]]
        return noisy_named
    if kind in ("slow_version", "bad_version"):
        await system.sub.poll(5)
        system.bad_after = system.sub.aliases["sine"].canary if "sine" in system.sub.aliases else None
        system.tagged = None
        system.bad_next = ("slow", 40.0) if kind == "slow_version" else ("loss", 3.0)

        async def faulty_found():
            """A rollback of the faulty version itself, or (slow) a slow-inference diagnosis while it is champion."""
            if system.tagged is None:
                return []
            back = [e for e in await events_of(D.ROLLED_BACK) if e["version"] == system.tagged and Cause(e["cause"]) is not Cause.SUPERSEDED]
            slow = [e for e in await events_of(D.DIAGNOSIS_MADE) if "slow_inference" in e["reason"]
                    and system.served_versions()[0] == system.tagged]
            return back + slow
        return faulty_found
    if kind == "memory":
        from streams.simulation.fleet import SineFleet

        burst = SineFleet(seed=500 + k, points_per_task=1)
        for _ in range(30000):
            tid, x, y = burst.sample_task()
            await system.pub.publish("sine", x, y, [f"burst-{k}-{tid}"])
        system.sent += 30000

        async def pressure_found():
            return [e for e in await events_of(D.DIAGNOSIS_MADE) if "memory_pressure" in e["reason"]]
        return pressure_found
    if kind == "crash":
        os.killpg(system.worker.pid, signal.SIGKILL)
        system.worker.wait(10)

        async def gone():
            return system.worker.poll() is not None
        return gone
    os.kill(system.broker.process.pid, signal.SIGSTOP)  # broker_pause
    await asyncio.sleep(8)
    os.kill(system.broker.process.pid, signal.SIGCONT)

    async def paused():
        return True
    return paused


def resolution_check(system: System, kind: str, result: dict, found, base_loss: float, base_lat: float, events_of):
    """The check (async, no arguments) that finds the fault of ``kind`` resolved."""
    from streams.records.wire import Cause, DecisionType as D

    async def resolved():
        loss, lat = system.level(6.0)
        m = await asyncio.to_thread(system.metrics)
        if kind == "drift":
            promoted = [e for e in await events_of(D.ROLLOUT_PROMOTED) if Cause(e["cause"]) is not Cause.FIRST_VERSION]
            return bool(promoted) and within(loss, result.setdefault("alarm_loss", loss), -0.05)
        if kind == "noisy_agent":
            return m.get("metastream_agents_quarantined", 0) >= 1 and within(loss, base_loss)
        if kind == "slow_version":  # the faulty version no longer served, and the latency back
            return bool(found) and system.tagged not in system.served_versions() and within(lat, base_lat)
        if kind == "bad_version":
            return bool(found) and system.tagged not in system.served_versions() and within(loss, base_loss)
        if kind == "memory":
            return m.get("metastream_buffer_bytes", 0) < 0.8 * m.get("metastream_buffer_bound_bytes", 1) and bool(found)
        counted = m.get("metastream_experiences_ingested_total", 0) + m.get("metastream_experiences_duplicate_total", 0)
        return counted >= 0.99 * system.sent - system.rate * 2 and within(loss, base_loss)
    return resolved


async def episode(system: System, kind: str, k: int, args) -> dict:
    base_loss, base_lat = system.level(10.0)
    since = int(time.time() * 1000)
    print(f"{kind} #{k + 1}: before the fault loss {base_loss:.3f}, p95 latency {base_lat:.2f} ms", flush=True)
    result = {"kind": kind, "detected": False, "resolved": False, "detect_s": None, "resolve_s": None}
    t0 = time.monotonic()

    async def events_of(*kinds):
        return new_events(await system.events(), since, *kinds)

    detect = await inject(system, kind, k, events_of)
    detect_s, found = await wait_until(detect, args.detect_s)
    if detect_s is not None:
        result.update(detected=True, detect_s=round(time.monotonic() - t0, 2))
    if kind == "crash":
        system.start_worker()  # the supervisor's part
        await system.wait_ready()
    if kind == "drift":
        result["alarm_loss"] = system.level(4.0)[0]
    resolve_s, _ = await wait_until(resolution_check(system, kind, result, found, base_loss, base_lat, events_of), args.resolve_s)
    if resolve_s is not None and result["detected"]:
        result.update(resolved=True, resolve_s=round(time.monotonic() - t0, 2))
    system.noisy.clear()
    system.slow_faults.pop(system.tagged, None)  # an injection ends with its episode: the next starts clean
    system.loss_faults.pop(system.tagged, None)
    system.bad_next = None
    how = ""
    if kind in ("slow_version", "bad_version"):
        how = f"; faulty version v{system.tagged}" + (f", found by {found[0]['event_type']} ({found[0]['cause']})"
                                                     if isinstance(found, list) and found else "")
    print(f"  detected {result['detected']} ({result['detect_s']} s), resolved {result['resolved']} ({result['resolve_s']} s){how}",
          flush=True)
    return result


async def run(kinds: list[str], args, control: float | None = None) -> tuple[list[dict], dict]:
    from streams.kafka.broker import ensure_topics
    from streams.client import ExperiencePublisher, ModelSubscriber
    from streams.simulation.fleet import SineFleet
    from streams.settings import Settings

    system = System(args.rate)
    try:
        await ensure_topics(system.broker.bootstrap, Settings().topics.configs(), 2)
        system.start_worker()
        await system.wait_ready()
        system.fleet = SineFleet(seed=1)
        system.sub = await ModelSubscriber(system.broker.bootstrap).start()
        system.pub = await ExperiencePublisher(system.broker.bootstrap, linger_ms=20).start()
        driver = asyncio.ensure_future(system.drive())
        started = time.time()
        await asyncio.sleep(args.warm_s)  # a champion and a few rollouts first
        results = []
        if control is None:
            for kind in kinds:
                for k in range(args.repeats):
                    results.append(await episode(system, kind, k, args))
                    await asyncio.sleep(args.settle_s)
        else:
            await asyncio.sleep(control)
        duration = time.time() - started
        driver.cancel()
        return results, {"duration_s": duration, "events": await system.events(), "after_ms": int((started + args.warm_s) * 1000)}
    finally:
        for closing in (system.pub, system.sub):
            if closing is not None:
                try:
                    await closing.stop()
                except Exception:  # noqa: BLE001
                    pass
        system.stop()


def false_alarms(events: list[dict], after_ms: int) -> dict[str, int]:
    from streams.records.wire import Cause, DecisionType as D

    late = [e for e in events if e["timestamp_ms"] >= after_ms]
    backs = [e["cause"] for e in late if e["event_type"] == D.ROLLED_BACK and Cause(e["cause"]) is not Cause.SUPERSEDED]
    out = {"drift": sum(e["event_type"] == D.DRIFT_DETECTED for e in late),
           "diagnosis": sum(e["event_type"] == D.DIAGNOSIS_MADE for e in late), "rollback": len(backs)}
    print(f"control rollbacks by cause: {dict((c, backs.count(c)) for c in set(backs))}; diagnoses: "
          f"{[e['reason'][:40] for e in late if e['event_type'] == D.DIAGNOSIS_MADE]}")
    return out


async def main_async(args) -> dict:
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown fault kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    results, info = await run(kinds, args)
    control_s = info["duration_s"] - args.warm_s
    alarms: dict[str, int] = {}
    if args.control:
        print(f"\ncontrol: the same system with no fault for {control_s:.0f}s", flush=True)
        _, control = await run([], args, control=control_s)
        alarms = false_alarms(control["events"], control["after_ms"])
    rows, per_kind = [], {}
    for kind in kinds:
        mine = [r for r in results if r["kind"] == kind]
        det = [r["detect_s"] for r in mine if r["detected"]]
        res = [r["resolve_s"] for r in mine if r["resolved"]]
        per_kind[kind] = {"detected": len(det), "resolved": len(res), "injected": len(mine),
                          "time_to_detect_s": float(np.mean(det)) if det else None, "time_to_resolve_s": float(np.mean(res)) if res else None}
        rows.append([kind, f"{len(det)}/{len(mine)}", f"{len(res)}/{len(mine)}", f"{np.mean(det):.1f}" if det else "-",
                     f"{np.mean(res):.1f}" if res else "-"])
    print_table(f"self-healing: {args.repeats} injections of each fault, {args.rate:.0f} experiences/s; resolution bound "
                f"{args.resolve_s:.0f}s", ["fault", "detected", "resolved", "time to detect (s)", "time to resolve (s)"], rows)
    print(f"false alarms in the {control_s:.0f}s control: {alarms}" if args.control else "no control run (--no-control)")
    total = max(len(results), 1)
    return {"detected_share": sum(r["detected"] for r in results) / total, "resolved_share": sum(r["resolved"] for r in results) / total,
            "false_alarms": sum(alarms.values()) if args.control else None, "false_alarms_by_kind": alarms, "per_fault": per_kind,
            "control_s": round(control_s), "resolve_bound_s": args.resolve_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--rate", type=float, default=600.0)
    ap.add_argument("--detect-s", type=float, default=90.0)
    ap.add_argument("--resolve-s", type=float, default=120.0)
    ap.add_argument("--warm-s", type=float, default=40.0, help="fault-free start: a champion and its first rollouts")
    ap.add_argument("--settle-s", type=float, default=10.0, help="pause between episodes")
    ap.add_argument("--control", action=argparse.BooleanOptionalAction, default=True,
                    help="the fault-free control run of the same length (--no-control: faults only)")
    args = ap.parse_args()
    print_json(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
