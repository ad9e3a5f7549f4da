"""Time from the first drifted experience to the drift-triggered new version on ``models``, on the
sine demo's drift: the embedded broker, one real worker process, and a fleet publishing 1,000
experiences/s. Each trial is the demo's drift afresh on a model of its own (``sine0``, ``sine1``,
...; one worker serves them all): --warm seconds of Finn's sine tasks, then the frequency doubles
for --after seconds. Trials run one after another.

    python bench/latency.py [--trials 10 --warm 12 --after 8]

Latency = created_at of the first version of the trial's model published after the drift whose
update was triggered by a drift alarm, minus the timestamp of the first drifted experience. The
table also shows the drift signal (few-shot loss relative to the task's variance) before and after,
when the alarm came, when the drift update started, and candidates rejected on the way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_json, print_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def model_id(trial: int) -> str:
    return f"sine{trial}"


async def run(trials: int, warm: float, after: float, rate: float) -> list[dict]:
    from streams.kafka.broker import EmbeddedBroker, ensure_topics, free_port
    from streams.client import ExperiencePublisher, ModelSubscriber
    from streams.simulation.fleet import SineFleet, publish_tasks
    from streams.settings import Settings

    settings = Settings()
    models = {model_id(k): settings.catalog.models["sine"] for k in range(trials)}
    with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, settings.topics.configs(), settings.broker.partitions)
        metrics_port = free_port()
        env = dict(os.environ, METASTREAM_KAFKA=broker.bootstrap, METASTREAM_METRICS_PORT=str(metrics_port), METASTREAM_WEB_PORT="0",
                   METASTREAM_NEW_TASKS_TRIGGER="150", METASTREAM_MODELS=json.dumps(models), PYTHONPATH=str(ROOT))
        log = open(ROOT / "runs" / "latency-worker.log", "w") if (ROOT / "runs").is_dir() else subprocess.DEVNULL
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        versions: list[dict] = []
        losses: list[tuple[str, int, float]] = []
        drift_ms: list[int] = []
        scraper = None
        try:
            await wait_ready(metrics_port, worker)
            scraper = asyncio.ensure_future(scrape_loss(metrics_port, losses))
            sub = await ModelSubscriber(broker.bootstrap).start()
            async with ExperiencePublisher(broker.bootstrap, linger_ms=10) as pub:
                for k in range(trials):
                    fleet = SineFleet(seed=100 + k)
                    start = time.monotonic()
                    while time.monotonic() - start < warm + after:
                        if not fleet.drifted and time.monotonic() - start >= warm:
                            await pub.flush()
                            fleet.drift(True)
                            drift_ms.append(int(time.time() * 1000))
                        tick = time.monotonic()
                        await publish_tasks(pub, fleet, rate * 0.05, model_id=model_id(k))
                        await sub.poll(1)
                        versions += [version_row(m) for m in sub.take_arrivals()]
                        await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick)))
            await sub.poll(1000)
            versions += [version_row(m) for m in sub.take_arrivals()]
            await sub.stop()
            events = await read_events(broker.bootstrap)
            if (ROOT / "runs").is_dir():  # the decisions, for a look at a trial that missed
                (ROOT / "runs" / "latency-events.jsonl").write_text("".join(json.dumps(e, default=str) + "\n" for e in events))
        finally:
            if scraper is not None:
                scraper.cancel()
            worker.terminate()
            worker.wait(15)
    return [trial_row(k, t0, versions, events, losses) for k, t0 in enumerate(drift_ms)]


def trial_row(k: int, t0: int, versions: list[dict], events: list[dict], losses: list[tuple[str, int, float]]) -> dict:
    """One trial's figures: the first drift version after the drift at ``t0`` (ms), the alarm, the update's start."""
    from streams.records.wire import Cause, DecisionType

    mid = model_id(k)
    answers = [v for v in versions if v["model_id"] == mid and v["drift"] and v["created_ms"] >= t0]
    window = [e for e in events if e["model_id"] == mid and e["timestamp_ms"] >= t0]
    alarm = next((e for e in window if e["event_type"] == DecisionType.DRIFT_DETECTED), None)
    started = next((e for e in window if e["event_type"] == DecisionType.UPDATE_STARTED and e["cause"] == Cause.DRIFT), None)
    published = answers[0]["created_ms"] if answers else None
    before = [v for m, t, v in losses if m == mid and t0 - 3000 <= t < t0]
    peak = [v for m, t, v in losses if m == mid and t0 <= t < t0 + 4000]
    return {"trial": k + 1, "latency_s": (published - t0) / 1000 if answers else None,
            "version": answers[0]["version"] if answers else None,
            "loss_before": float(np.mean(before)) if before else None, "loss_peak": max(peak) if peak else None,
            "alarm_s": (alarm["timestamp_ms"] - t0) / 1000 if alarm else None,
            "update_started_s": (started["timestamp_ms"] - t0) / 1000 if started else None,
            "rejected_before": sum(e["event_type"] == DecisionType.VERSION_REJECTED and (published is None or e["timestamp_ms"] < published)
                                   for e in window)}


def version_row(m) -> dict:
    return {"model_id": m.model_id, "version": m.version, "created_ms": m.created_at_ms,
            "drift": m.metrics.get("trigger_drift", 0.0) == 1.0}


async def wait_ready(port: int, worker: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until the worker has rebuilt its state and consumes (its ``metastream_worker_ready`` gauge)."""
    from streams.worker.metrics import scrape

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}; see runs/latency-worker.log")
        if (await asyncio.to_thread(scrape, port)).get("metastream_worker_ready") == 1.0:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the worker did not become ready")


async def scrape_loss(port: int, into: list[tuple[str, int, float]]) -> None:
    """Sample the worker's drift signal (the ``metastream_prequential_loss`` gauge) twice a second."""
    from streams.worker.metrics import scrape

    prefix = 'metastream_prequential_loss{model_id="'
    while True:
        metrics = await asyncio.to_thread(scrape, port)
        now = int(time.time() * 1000)
        for key, value in metrics.items():
            if key.startswith(prefix) and value == value:
                into.append((key[len(prefix):].split('"')[0], now, value))
        await asyncio.sleep(0.5)


async def read_events(bootstrap: str) -> list[dict]:
    """The worker's decision events (DriftDetected, UpdateStarted, ...), decoded, oldest first."""
    from streams.kafka.topics import read_records

    events = [rec for _, rec in await read_records(bootstrap, "events", "DecisionEvent")]
    return sorted(events, key=lambda e: e["timestamp_ms"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--warm", type=float, default=12.0, help="seconds of undrifted tasks before each drift")
    ap.add_argument("--after", type=float, default=8.0, help="seconds of drifted tasks after it")
    ap.add_argument("--rate", type=float, default=1000.0, help="experiences per second")
    args = ap.parse_args()
    results = asyncio.run(run(args.trials, args.warm, args.after, args.rate))

    def sec(v):
        return "-" if v is None else f"{v:.2f}"

    rows = [[r["trial"], sec(r["loss_before"]), sec(r["loss_peak"]), sec(r["alarm_s"]), sec(r["update_started_s"]), r["rejected_before"],
             "missed" if r["latency_s"] is None else sec(r["latency_s"]), r["version"] or "-"] for r in results]
    print_table(f"drift -> new version latency, {args.trials} trials ({args.warm:.0f}s sine, then {args.after:.0f}s at double "
                f"frequency), {args.rate:,.0f} experiences/s; seconds after the first drifted experience",
                ["trial", "loss before", "loss peak", "alarm", "drift update started", "rejected", "version published", "version"], rows)
    # a trial without an answer counts as infinitely late: the percentiles never hide a miss
    latencies = [np.inf if r["latency_s"] is None else r["latency_s"] for r in results]
    p50, p95 = (float(np.percentile(latencies, q)) for q in (50, 95))
    missed = sum(r["latency_s"] is None for r in results)
    print(f"\nanswered {len(results) - missed}/{len(results)} drifts; p50 {p50:.2f} s, p95 {p95:.2f} s (target: p50 <= 2 s, p95 <= 5 s)")
    print_json({"p50_s": p50 if np.isfinite(p50) else None, "p95_s": p95 if np.isfinite(p95) else None, "missed": missed,
                "trials": len(results), "latencies_s": [r["latency_s"] for r in results],
                "alarm_s": [r["alarm_s"] for r in results]})


if __name__ == "__main__":
    main()
