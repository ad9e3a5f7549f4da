"""Soak under faults: the demo's sine fleet publishing at a steady rate for ``--minutes`` (default
20) into the embedded broker and a real worker, while the bench SIGKILLs the worker (and its
update processes) every ``--kill-every`` seconds and restarts it at once, as a supervisor would,
and freezes the broker with SIGSTOP for ``--pause-s`` seconds every ``--pause-every`` seconds.
The fleet's distribution drifts (sine frequency 1 <-> 2) every ``--drift-every`` seconds.

Measured:
- experiences: every one the fleet published carries an event id; at the end the bench reads
  every event id on ``experiences`` (``lost_on_topic``: sent but never on the log) and compares the
  worker's own count (``metastream_experiences_ingested_total``, which counts an event id once and
  is rebuilt from the log after each restart) with the distinct ids on the log: ``lost`` = fewer,
  ``double_counted`` = more;
- ``duplicate_versions``: (model, version) pairs published more than once on ``models``;
- drifts answered (``drifts_answered`` of ``drifts``): a drift-triggered version published before the
  next drift, or, for a mixture of meta-models, a ``RegimeRecognised`` event (the drift led back to a
  regime a component serves: answered by routing, ``answered_by_routing``); the latency from the
  drift to the first of them;
- learning across restarts: ``versions_after_first_kill``, and each incarnation's decisions;
- worker memory: RSS of the worker and its children every 5 s, as a PNG; ``rss_growth_mb`` is the
  mean over the last 5 minutes minus the mean over the first 5 minutes after ``--warm-up-s``.

    python bench/soak.py [--minutes 20] [--rate 3000] [--kill-every 240] [--pause-every 300] [--snapshot-every 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _worker import stop_worker  # noqa: E402
from _soak_report import plot_rss, tree_rss_mb  # noqa: E402
from _table import machine, print_json, print_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKER_ENV = {"METASTREAM_NEW_TASKS_TRIGGER": "120", "METASTREAM_UPDATE_ITERATIONS": "60", "METASTREAM_PARTITIONS": "2",
              "METASTREAM_APP_ID": "metastream-soak"}


class Soak:
    def __init__(self, args) -> None:
        from streams.kafka.broker import EmbeddedBroker, free_port

        self.args = args
        self.broker = EmbeddedBroker().start()
        self.metrics_port = free_port()
        self.worker: subprocess.Popen | None = None
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.sent = 0  # experiences published (each with a fresh event id)
        self.rss: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self.faults: list[tuple[float, str]] = []  # (seconds since start, "kill" | "pause")
        self.drifts_ms: list[int] = []
        self.restarts: list[float] = []  # seconds from a restart to ready
        self.stalls = 0
        self.snapshot_dir = tempfile.mkdtemp(prefix="metastream-soak-snapshots-")

    def t(self) -> float:
        return time.monotonic() - self.started

    def start_worker(self) -> None:
        env = dict(os.environ, METASTREAM_KAFKA=self.broker.bootstrap, METASTREAM_METRICS_PORT=str(self.metrics_port),
                   METASTREAM_WEB_PORT="0", PYTHONPATH=str(ROOT), METASTREAM_SNAPSHOT_DIR=self.snapshot_dir,
                   METASTREAM_SNAPSHOT_EVERY_S=str(self.args.snapshot_every), **WORKER_ENV)
        if self.args.model:
            env["METASTREAM_MODELS"] = self.args.model
        log = open(ROOT / "runs" / "soak-worker.log", "a") if (ROOT / "runs").is_dir() else subprocess.DEVNULL
        self.worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--loglevel", "INFO"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)

    async def wait_ready(self, timeout: float = 600) -> float:
        from streams.worker.metrics import scrape

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if (await asyncio.to_thread(scrape, self.metrics_port)).get("metastream_worker_ready") == 1.0:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        raise TimeoutError("the worker did not get ready")

    async def publish(self, end: float) -> None:
        """The fleet at ``--rate`` experiences/s in 0.1 s ticks; it drifts every ``--drift-every`` s."""
        from streams.client import ExperiencePublisher
        from streams.simulation.fleet import SineFleet

        fleet = SineFleet(seed=7, points_per_task=20)
        next_drift = self.args.drift_every
        async with ExperiencePublisher(self.broker.bootstrap, linger_ms=20) as pub:
            while self.t() < end:
                tick = time.monotonic()
                if self.t() >= next_drift:
                    await pub.flush()
                    fleet.drift(not fleet.drifted)
                    self.drifts_ms.append(int(time.time() * 1000))
                    next_drift += self.args.drift_every
                rows = 0
                while rows < self.args.rate * 0.1:
                    tid, x, y = fleet.sample_task()
                    await pub.publish("sine", x, y, [tid] * len(x))
                    rows += len(x)
                self.sent += rows
                spent = time.monotonic() - tick
                if spent > 0.5:
                    self.stalls += 1  # a send blocked (the broker was paused): the rows were still queued, not dropped
                await asyncio.sleep(max(0.0, 0.1 - spent))
            await pub.flush()

    async def faults_loop(self, end: float) -> None:
        a = self.args
        next_kill, next_pause = a.kill_every, a.pause_every
        while self.t() < end - 30:
            await asyncio.sleep(1.0)
            if self.t() >= next_kill:
                next_kill += a.kill_every
                self.faults.append((self.t(), "kill"))
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait(10)
                self.start_worker()
                self.restarts.append(await self.wait_ready())
            if self.t() >= next_pause:
                next_pause += a.pause_every
                self.faults.append((self.t(), "pause"))
                os.kill(self.broker.process.pid, signal.SIGSTOP)
                await asyncio.sleep(a.pause_s)
                os.kill(self.broker.process.pid, signal.SIGCONT)

    async def sample_rss(self, end: float) -> None:
        while self.t() < end:
            if self.worker is not None and self.worker.poll() is None:
                self.rss.append((self.t(), tree_rss_mb(self.worker.pid)))
            await asyncio.sleep(5.0)

    def stop(self) -> None:
        stop_worker(self.worker)
        self.broker.stop()
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)


async def settle(soak: Soak, expected: int, timeout: float) -> float:
    """The worker's count once it stops changing (or reaches ``expected``)."""
    from streams.worker.metrics import scrape

    last, same, started = -1.0, 0, time.monotonic()
    while time.monotonic() - started < timeout:
        count = (await asyncio.to_thread(scrape, soak.metrics_port)).get("metastream_experiences_ingested_total", -1.0)
        if count >= expected:
            return count
        same = same + 1 if count == last else 0
        if same >= 20:  # 10 s without a change
            return count
        last = count
        await asyncio.sleep(0.5)
    return last


async def run(args) -> dict:
    from schemas import codec_for
    from schemas.experiences import id_columns
    from streams.kafka.broker import ensure_topics
    from streams.settings import Settings
    from streams.kafka.topics import read_range, read_records

    soak = Soak(args)
    try:
        await ensure_topics(soak.broker.bootstrap, Settings().topics.configs(), 2)
        soak.start_worker()
        await soak.wait_ready()
        soak.started, soak.started_wall = time.monotonic(), time.time()
        end = args.minutes * 60
        await asyncio.gather(soak.publish(end), soak.faults_loop(end), soak.sample_rss(end), progress(soak, end))
        batches = codec_for("ExperienceBatch")
        on_topic: set[str] = set()
        async for msg in read_range(soak.broker.bootstrap, "experiences"):
            on_topic.update(id_columns(batches.decode(msg.value))[0])
        counted = await settle(soak, len(on_topic), 600)
        versions = [rec for _, rec in await read_records(soak.broker.bootstrap, "models", "ModelVersion")]
        events = [rec for _, rec in await read_records(soak.broker.bootstrap, "events", "DecisionEvent")]
    finally:
        soak.stop()
    pairs = [(v["model_id"], v["version"]) for v in versions]
    kills = [t for t, kind in soak.faults if kind == "kill"]
    first_kill_ms = (soak.started_wall + kills[0]) * 1000 if kills else float("inf")
    latencies, routed = [], 0
    for k, t0 in enumerate(soak.drifts_ms):
        t1 = soak.drifts_ms[k + 1] if k + 1 < len(soak.drifts_ms) else float("inf")
        answers = [v["created_at_ms"] for v in versions
                   if v["metrics"].get("trigger_drift") == 1.0 and t0 <= v["created_at_ms"] < t1]
        recognised = [e["timestamp_ms"] for e in events  # a mixture routing a regime it knows answers the drift too
                      if e["event_type"] == "RegimeRecognised" and t0 <= e["timestamp_ms"] < t1]
        routed += bool(recognised) and (not answers or min(recognised) < min(answers))
        latencies.append((min(answers + recognised) - t0) / 1000 if answers or recognised else None)
    answered = [x for x in latencies if x is not None]
    warm = args.warm_up_s
    first = [mb for t, mb in soak.rss if warm <= t < warm + 300]
    last = [mb for t, mb in soak.rss if t >= args.minutes * 60 - 300]
    growth = float(np.mean(last) - np.mean(first)) if first and last else float("nan")
    plot_rss(soak, Path(args.plot))
    print_decisions(soak, events)
    keep_events(args.events, events)
    result = {
        "minutes": args.minutes, "rate": args.rate, "sent": soak.sent, "on_topic": len(on_topic), "counted": int(counted),
        "lost_on_topic": max(0, soak.sent - len(on_topic)), "lost": max(0, len(on_topic) - int(counted)),
        "double_counted": max(0, int(counted) - len(on_topic)), "versions": len(pairs),
        "duplicate_versions": len(pairs) - len(set(pairs)), "kills": sum(k == "kill" for _, k in soak.faults),
        "pauses": sum(k == "pause" for _, k in soak.faults), "restart_to_ready_s": [round(x, 1) for x in soak.restarts],
        "drifts": len(soak.drifts_ms), "drifts_answered": len(answered), "answered_by_routing": routed,
        "p95_drift_to_version_s": float(np.percentile(answered, 95)) if answered else None,
        "rss_first_mb": float(np.mean(first)) if first else None, "rss_last_mb": float(np.mean(last)) if last else None,
        "rss_growth_mb": growth, "publisher_stalls": soak.stalls,
        # a restart must not stop learning: versions the restarted workers published
        "versions_after_first_kill": sum(v["created_at_ms"] >= first_kill_ms for v in versions),
        "snapshot_every_s": args.snapshot_every, "model": args.model or "default",
    }
    return result


def keep_events(path: str, events: list[dict]) -> None:
    """Every decision as JSON lines in ``path`` (``--events``): for whoever asks why learning stopped."""
    if path:
        Path(path).write_text("".join(json.dumps(e, default=lambda v: v.hex() if isinstance(v, bytes) else str(v)) + "\n"
                                      for e in events))


def print_decisions(soak: Soak, events: list[dict]) -> None:
    """What each worker incarnation decided (between two SIGKILLs): a restart must not stop learning."""
    kills = [soak.started_wall + t for t, kind in soak.faults if kind == "kill"]
    bounds = [soak.started_wall] + kills + [float("inf")]
    rows = []
    for k in range(len(bounds) - 1):
        mine = [e for e in events if bounds[k] * 1000 <= e["timestamp_ms"] < bounds[k + 1] * 1000]
        count = lambda kind, cause=None: sum(e["event_type"] == kind and (cause is None or e["cause"] == cause) for e in mine)  # noqa: E731
        rejected = {}
        for e in mine:
            if e["event_type"] == "VersionRejected":
                rejected[e["cause"]] = rejected.get(e["cause"], 0) + 1
        rows.append([k + 1, count("UpdateStarted"), count("VersionPublished"), count("DriftDetected"),
                     ", ".join(f"{c} {n}" for c, n in sorted(rejected.items())) or "-"])
    print_table("Decisions per worker incarnation (split at each SIGKILL)",
                ["incarnation", "updates started", "published", "drift alarms", "rejected (by cause)"], rows)


async def progress(soak: Soak, end: float) -> None:
    from streams.worker.metrics import scrape

    while soak.t() < end:
        await asyncio.sleep(30)
        m = await asyncio.to_thread(scrape, soak.metrics_port)
        rss = soak.rss[-1][1] if soak.rss else float("nan")
        print(f"  {soak.t():6.0f}s  sent {soak.sent:>10,}  counted {m.get('metastream_experiences_ingested_total', 0):>12,.0f}  "
              f"versions {m.get('metastream_versions_published_total', 0):>4.0f}  rss {rss:7.0f} MiB  faults {len(soak.faults)}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=3000.0, help="experiences per second the fleet publishes")
    ap.add_argument("--kill-every", type=float, default=240.0, help="seconds between SIGKILLs of the worker")
    ap.add_argument("--pause-every", type=float, default=300.0, help="seconds between broker pauses")
    ap.add_argument("--pause-s", type=float, default=8.0, help="how long the broker stays SIGSTOPped")
    ap.add_argument("--drift-every", type=float, default=150.0, help="seconds between drifts of the fleet")
    ap.add_argument("--model", default="", help="the worker's METASTREAM_MODELS (default: what a worker serves unset), "
                    """e.g. '{"sine": {"preset": "sine", "mixture": true}}'""")
    ap.add_argument("--warm-up-s", type=float, default=120.0)
    ap.add_argument("--snapshot-every", type=float, default=60.0,
                    help="seconds between the worker's snapshots of its state (0: a restart replays the whole log)")
    ap.add_argument("--plot", default=str(ROOT / "docs" / "soak_rss.png"))
    ap.add_argument("--events", default="", help="a file to write every decision event to, as JSON lines")
    args = ap.parse_args()
    print(f"soak: {args.minutes:g} min at {args.rate:,.0f} experiences/s on {machine()}", flush=True)
    r = asyncio.run(run(args))
    print_table("Soak under faults", ["figure", "value"], [[k, v] for k, v in r.items()])
    print(f"RSS plot: {args.plot}")
    print_json({k: r[k] for k in ("lost", "double_counted", "duplicate_versions", "drifts", "drifts_answered",
                                  "answered_by_routing", "rss_growth_mb", "lost_on_topic", "p95_drift_to_version_s", "sent",
                                  "counted", "kills", "pauses", "rate", "minutes", "model")})


if __name__ == "__main__":
    main()
