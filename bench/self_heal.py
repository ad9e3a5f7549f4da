"""Self-healing, measured on the embedded system: a real worker, a simulated fleet of 40 sine agents
that use the version their cohort is served and report their losses and latencies, and faults
injected one kind at a time, ``--repeats`` times each (a fresh noisy agent each time); then, in the
same run, a fault-free control of ``--control-s`` seconds on a fresh system, counting false alarms
(any drift alarm, diagnosis, rollback, crash report or lost member in it). Default run about 40
minutes on 2 cores.

Judged strictly (``_healing_judge.py`` has the table): a fault is *detected* only by an event the
product put on the events topic about it, and *resolved* only by its kind's criterion within
``--resolve-s`` seconds of the injection. The bench plays the supervisor that restarts a crashed
worker (as systemd or Kubernetes would); nothing else it does after injecting a fault.

| fault | injected |
| drift | the sine frequency changes (1 <-> 2) |
| noisy_agent | a new agent sends random targets |
| slow_version | the next version rolled out (the next canary) predicts 40 ms slower |
| bad_version | the next version rolled out reports three times the loss |
| memory | the worker's memory limit (a cgroup-style file it reads at every diagnosis, as a container resized in place) is lowered until what it holds is 85% of it, and a burst of 30,000 one-point tasks fills the replay buffer; the limit is lifted when the episode ends, and the next starts once the worker runs all its update processes again (``--memory-mb`` instead: a fixed budget, no cut) |
| crash | SIGKILL of the worker (the bench restarts it) |
| broker_pause | SIGSTOP of the broker for 8 s |

    python bench/self_heal.py [--repeats 3] [--kinds drift,bad_version,...] [--control-s 1200] [--model JSON] [--events DIR]
                              [--memory-mb MiB]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _healing_judge import LogLedger, counted_exactly_once, detection, drift_answered, others_quarantined  # noqa: E402
from _healing_system import System  # noqa: E402
from _table import print_json, print_table  # noqa: E402

HELD_SHARE = 0.85  # the memory fault lowers the worker's limit until what it holds is this share of it (the rule's bound: 0.8)
KINDS = ("noisy_agent", "slow_version", "bad_version", "memory", "crash", "broker_pause", "drift")  # drift last: it stays


async def inject(system: System, kind: str, k: int, ctx: dict) -> None:
    """Inject one fault of ``kind`` (what the judging needs to know goes into ``ctx``)."""
    if kind == "drift":
        system.fleet.drift(not system.fleet.drifted)
    elif kind == "noisy_agent":
        ctx["agent"] = f"noisy-{k}"  # a fresh agent each time
        system.noisy.add(ctx["agent"])
    elif kind in ("slow_version", "bad_version"):
        await system.sub.poll(5)
        system.bad_after = system.sub.aliases["sine"].canary if "sine" in system.sub.aliases else None
        system.tagged = None
        system.bad_next = ("slow", 40.0) if kind == "slow_version" else ("loss", 3.0)
    elif kind == "memory":
        from streams.simulation.fleet import SineFleet

        if not system.memory_mb:
            used = (await asyncio.to_thread(system.metrics)).get("metastream_memory_used_bytes", 0.0)
            system.set_limit(int(used / HELD_SHARE))
        burst = SineFleet(seed=500 + k, points_per_task=1)
        for _ in range(30000):
            tid, x, y = burst.sample_task()
            await system.pub.publish("sine", x, y, [f"burst-{k}-{tid}"])
        system.sent += 30000
    elif kind == "crash":
        os.killpg(system.worker.pid, signal.SIGKILL)
        system.worker.wait(10)
        system.start_worker()  # the supervisor's part
    else:  # broker_pause
        os.kill(system.broker.process.pid, signal.SIGSTOP)
        await asyncio.sleep(8)
        os.kill(system.broker.process.pid, signal.SIGCONT)


async def resolved(system: System, kind: str, at_ms: int, ctx: dict, events: list[dict], ledger: LogLedger) -> bool:
    """Whether the fault of ``kind`` is resolved now (``_healing_judge.py``'s table)."""
    champion, canary = system.served_versions()
    if kind == "drift":
        loss, _ = system.level(6.0)
        return drift_answered(events, at_ms, champion) and loss == loss and loss <= 1.10 * ctx["base_loss"]
    if kind == "noisy_agent":
        m = await asyncio.to_thread(system.metrics)
        ctx["others_quarantined"] = others_quarantined(events, at_ms, ctx["agent"])
        return m.get("metastream_agents_quarantined", 0) >= 1 and not ctx["others_quarantined"]
    if kind in ("slow_version", "bad_version"):
        return system.tagged is not None and system.tagged not in (champion, canary)
    if kind == "memory":
        m = await asyncio.to_thread(system.metrics)
        return m.get("metastream_memory_used_bytes", 0) < 0.8 * m.get("metastream_memory_budget_bytes", 1)
    ok, ctx["ledger"] = await counted_exactly_once(system, ledger)
    return ok


async def episode(system: System, kind: str, k: int, args, ledger: LogLedger) -> dict:
    if kind == "memory":  # from a worker whole again: the last episode's remedy may have given an update process back
        await system.wait_metric("metastream_update_processes", 2.0, timeout=150.0)
    base_loss, base_lat = system.level(10.0)
    at_ms = int(time.time() * 1000)
    print(f"{kind} #{k + 1}: before the fault loss {base_loss:.3f}, p95 latency {base_lat:.2f} ms", flush=True)
    result = {"kind": kind, "detected": False, "resolved": False, "detect_s": None, "resolve_s": None}
    ctx = {"base_loss": base_loss, "champion_now": lambda: system.served_versions()[0]}
    t0 = time.monotonic()
    await inject(system, kind, k, ctx)
    if kind == "crash":
        await system.wait_ready()
    found: list[dict] = []
    while time.monotonic() - t0 < args.resolve_s:
        if system.tagged is not None:
            ctx["version"] = system.tagged
        events = await system.events()
        if not result["detected"]:
            found = detection(kind, events, at_ms, ctx)
            if found:
                result.update(detected=True, detect_s=round(found[0]["timestamp_ms"] / 1000 - at_ms / 1000, 2))
        if result["detected"] and await resolved(system, kind, at_ms, ctx, events, ledger):
            result.update(resolved=True, resolve_s=round(time.monotonic() - t0, 2))
            if kind in ("slow_version", "bad_version"):  # the injection waits for the next version: from when it was served
                result["served_s"] = round(time.monotonic() - system.tagged_at, 2)
            break
        await asyncio.sleep(1.0)
    system.noisy.clear()
    system.set_limit(None)
    system.slow_faults.pop(system.tagged, None)  # an injection ends with its episode: the next starts clean
    system.loss_faults.pop(system.tagged, None)
    system.bad_next = None
    how = f"; by {found[0]['event_type']} ({found[0]['cause']})" if found else ""
    if kind in ("slow_version", "bad_version"):
        how += f"; faulty version v{system.tagged}, no longer served {result.get('served_s')} s after agents first met it"
    extra = {k: v for k, v in ctx.items() if k in ("ledger", "others_quarantined") and v}
    print(f"  detected {result['detected']} ({result['detect_s']} s), resolved {result['resolved']} ({result['resolve_s']} s){how}"
          f"{' ' + str(extra) if extra else ''}", flush=True)
    return result


async def run(kinds: list[str], args, control: float | None = None) -> tuple[list[dict], dict]:
    from streams.kafka.broker import ensure_topics
    from streams.client import ExperiencePublisher, ModelSubscriber
    from streams.simulation.fleet import SineFleet
    from streams.settings import Settings

    system = System(args.rate, args.model, args.memory_mb)
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
        results, ledger = [], LogLedger(system.broker.bootstrap)
        if control is None:
            for kind in kinds:
                for k in range(args.repeats):
                    results.append(await episode(system, kind, k, args, ledger))
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
           "diagnosis": sum(e["event_type"] == D.DIAGNOSIS_MADE for e in late), "rollback": len(backs),
           "crash_or_member_lost": sum(e["event_type"] in (D.WORKER_RESTARTED, D.MEMBER_LOST) for e in late)}
    print(f"control rollbacks by cause: {dict((c, backs.count(c)) for c in set(backs))}; diagnoses: "
          f"{[e['reason'][:40] for e in late if e['event_type'] == D.DIAGNOSIS_MADE]}")
    return out


def keep_events(folder: str, part: str, events: list[dict]) -> None:
    """The run's decision events as JSON lines in ``folder`` (``--events``): what a false alarm was."""
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / f"events_{part}.jsonl", "w") as out:
        for e in events:
            out.write(json.dumps(e, default=lambda v: v.hex() if isinstance(v, bytes) else str(v)) + "\n")


def median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


async def main_async(args) -> dict:
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown fault kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    results, info = await run(kinds, args)
    keep_events(args.events, "faults", info["events"])
    alarms: dict[str, int] = {}
    if args.control_s > 0:
        print(f"\ncontrol: a fresh system with no fault for {args.control_s:.0f}s", flush=True)
        _, control = await run([], args, control=args.control_s)
        keep_events(args.events, "control", control["events"])
        alarms = false_alarms(control["events"], control["after_ms"])
    rows, per_kind = [], {}
    for kind in kinds:
        mine = [r for r in results if r["kind"] == kind]
        det = [r["detect_s"] for r in mine if r["detected"]]
        res = [r["resolve_s"] for r in mine if r["resolved"]]
        per_kind[kind] = {"injected": len(mine), "detected": len(det), "resolved": len(res),
                          "median_detect_s": median(det), "median_resolve_s": median(res)}
        if kind in ("slow_version", "bad_version"):
            per_kind[kind]["median_served_s"] = median([r["served_s"] for r in mine if "served_s" in r])
        rows.append([kind, f"{len(det)}/{len(mine)}", f"{len(res)}/{len(mine)}", f"{median(det):.1f}" if det else "-",
                     f"{median(res):.1f}" if res else "-"])
    print_table(f"self-healing: {args.repeats} injections of each fault, {args.rate:.0f} experiences/s; resolution bound "
                f"{args.resolve_s:.0f}s from the injection", ["fault", "detected", "resolved", "median time to detect (s)",
                                                               "median time to resolve (s)"], rows)
    print(f"false alarms in the {args.control_s:.0f}s control: {alarms}" if args.control_s > 0 else "no control run (--control-s 0)")
    total = max(len(results), 1)
    return {"detected_share": sum(r["detected"] for r in results) / total, "resolved_share": sum(r["resolved"] for r in results) / total,
            "false_alarms": sum(alarms.values()) if args.control_s > 0 else None, "false_alarms_by_kind": alarms,
            "per_fault": per_kind, "control_s": args.control_s, "resolve_bound_s": args.resolve_s,
            "faults_s": round(info["duration_s"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--rate", type=float, default=600.0)
    ap.add_argument("--resolve-s", type=float, default=120.0, help="detection and resolution must both come within this")
    ap.add_argument("--warm-s", type=float, default=40.0, help="fault-free start: a champion and its first rollouts")
    ap.add_argument("--settle-s", type=float, default=5.0, help="pause between episodes")
    ap.add_argument("--control-s", type=float, default=1200.0, help="the fault-free control's length (0: none)")
    ap.add_argument("--events", default="", help="a folder to write each run's decision events to, as JSON lines")
    ap.add_argument("--model", default="", help="the worker's METASTREAM_MODELS (default: what a worker serves unset), "
                    """e.g. '{"sine": {"preset": "sine", "mixture": true}}' to measure the drift fault with the mixture""")
    ap.add_argument("--memory-mb", type=float, default=0.0, help="a fixed memory budget for the worker (METASTREAM_MEMORY_MB; "
                    "0: none, the memory fault cuts the worker's limit file instead)")
    args = ap.parse_args()
    print_json(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
