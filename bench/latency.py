"""Time from the first drifted experience to the drift-triggered new version on ``models``, on the
sine demo: the embedded broker, a real worker process, and a fleet publishing 1,000 experiences/s
whose task distribution switches (frequency 1 <-> 2) every --period seconds.

    python bench/latency.py [--switches 10 --period 20]

Latency = created_at of the first version published after a switch whose update was triggered by
a drift alarm, minus the timestamp of the first experience of the new distribution.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_json, print_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


async def run(switches: int, period: float, rate: float) -> list[dict]:
    from streams.broker import EmbeddedBroker, ensure_topics, free_port
    from streams.client import ExperiencePublisher, ModelSubscriber
    from streams.fleet import SineFleet, publish_tasks
    from streams.settings import Settings

    settings = Settings()
    with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, settings.topics, settings.partitions)
        env = dict(os.environ, METASTREAM_KAFKA=broker.bootstrap, METASTREAM_METRICS_PORT=str(free_port()),
                   METASTREAM_NEW_TASKS_TRIGGER="150", PYTHONPATH=str(ROOT))
        log = open(ROOT / "runs" / "latency-worker.log", "w") if (ROOT / "runs").is_dir() else subprocess.DEVNULL
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        fleet = SineFleet(seed=7)
        trials: list[dict] = []
        try:
            sub = await ModelSubscriber(broker.bootstrap).start()
            async with ExperiencePublisher(broker.bootstrap, linger_ms=10) as pub:
                start = time.monotonic()
                total = period * (switches + 1)
                switch_ms: list[int] = []
                while time.monotonic() - start < total:
                    k = int((time.monotonic() - start) // period)
                    if k > len(switch_ms):
                        fleet.drift(k % 2 == 1)
                        switch_ms.append(int(time.time() * 1000))
                    tick = time.monotonic()
                    await publish_tasks(pub, fleet, rate * 0.05)
                    for m in await sub.poll(1):
                        trials.append({"version": m.version, "created_ms": m.created_at_ms,
                                       "drift": m.metrics.get("trigger_drift", 0.0) == 1.0})
                    await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick)))
            for m in await sub.poll(1000):
                trials.append({"version": m.version, "created_ms": m.created_at_ms, "drift": m.metrics.get("trigger_drift", 0.0) == 1.0})
            await sub.stop()
        finally:
            worker.terminate()
            worker.wait(15)
    results = []
    for i, t0 in enumerate(switch_ms):
        t1 = switch_ms[i + 1] if i + 1 < len(switch_ms) else float("inf")
        after = [v for v in trials if v["drift"] and t0 <= v["created_ms"] < t1]
        results.append({"switch": i + 1, "latency_s": (after[0]["created_ms"] - t0) / 1000 if after else None,
                        "version": after[0]["version"] if after else None})
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=10)
    ap.add_argument("--period", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    args = ap.parse_args()
    results = asyncio.run(run(args.switches, args.period, args.rate))
    rows = [[r["switch"], "missed" if r["latency_s"] is None else f"{r['latency_s']:.2f}", r["version"] or "-"] for r in results]
    print_table(f"drift -> new version latency, {args.switches} distribution switches every {args.period:.0f}s at "
                f"{args.rate:,.0f} experiences/s", ["switch", "seconds", "version"], rows)
    caught = [r["latency_s"] for r in results if r["latency_s"] is not None]
    p50 = float(np.percentile(caught, 50)) if caught else None
    p95 = float(np.percentile(caught, 95)) if caught else None
    print(f"\ncaught {len(caught)}/{len(results)} switches; p50 {p50}, p95 {p95} (seconds)")
    print_json({"p50_s": p50, "p95_s": p95, "caught": len(caught), "switches": len(results),
                "latencies_s": [r["latency_s"] for r in results]})


if __name__ == "__main__":
    main()
