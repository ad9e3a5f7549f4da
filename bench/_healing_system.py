"""The system ``self_heal.py`` injects faults into: the embedded broker, one worker process
(restartable, as a supervisor would), and the fleet of 40 sine agents driving them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _worker import stop_worker  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKER_ENV = {"METASTREAM_NEW_TASKS_TRIGGER": "120", "METASTREAM_UPDATE_ITERATIONS": "60", "METASTREAM_ROLLOUT_MIN_SAMPLES": "20",
              "METASTREAM_ROLLOUT_EVIDENCE_TIMEOUT_S": "30", "METASTREAM_DIAGNOSE_EVERY_S": "1", "METASTREAM_BUFFER_MB": "8",
              "METASTREAM_PARTITIONS": "2"}


class System:
    """The embedded broker, one worker process (restartable), and the fleet driving them."""

    def __init__(self, rate: float, model: str = "", memory_mb: float = 0.0) -> None:
        from streams.kafka.broker import EmbeddedBroker, free_port

        self.broker = EmbeddedBroker().start()
        self.rate, self.model = rate, model  # model: the worker's METASTREAM_MODELS ("": what a worker serves unset)
        self.memory_mb = memory_mb  # the worker's METASTREAM_MEMORY_MB (0: the limit file below)
        self.limit_file = Path(tempfile.mkdtemp(prefix="metastream-limit-")) / "memory.max"  # as a container's cgroup file
        self.set_limit(None)
        self.metrics_port, self.web_port = free_port(), free_port()
        self.worker: subprocess.Popen | None = None
        self.loss_faults: dict[int, float] = {}
        self.slow_faults: dict[int, float] = {}
        self.bad_next: tuple[str, float] | None = None  # ("loss" | "slow", amount) for the next version rolled out
        self.bad_after: int | None = None  # the canary when the fault was injected (not the faulty one)
        self.tagged: int | None = None  # the faulty version of the current episode, once it is rolled out
        self.tagged_at = 0.0  # when agents were first served it (monotonic)
        self.noisy: set[str] = set()
        self.window: list[tuple[float, float, float, str]] = []  # (time, loss, latency, agent) reported by the fleet
        self.sent = 0
        self.hold = False  # the fleet holds its sends (while the bench compares the log with the worker's count)
        self.fleet = None
        self.sub = None
        self.pub = None

    def start_worker(self) -> None:
        env = dict(os.environ, METASTREAM_KAFKA=self.broker.bootstrap, METASTREAM_METRICS_PORT=str(self.metrics_port),
                   METASTREAM_WEB_PORT=str(self.web_port), PYTHONPATH=str(ROOT), **WORKER_ENV)
        if self.model:
            env["METASTREAM_MODELS"] = self.model
        if self.memory_mb:
            env["METASTREAM_MEMORY_MB"] = str(self.memory_mb)
        env["METASTREAM_MEMORY_LIMIT_FILE"] = str(self.limit_file)
        log = open(ROOT / "runs" / "self-heal-worker.log", "a") if (ROOT / "runs").is_dir() else subprocess.DEVNULL
        self.worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)

    def set_limit(self, limit_bytes: int | None) -> None:
        """The worker's memory limit, changed in place as a container's is resized (``None``: none)."""
        self.limit_file.write_text("max\n" if limit_bytes is None else f"{int(limit_bytes)}\n")

    async def wait_ready(self, timeout: float = 120) -> None:
        from streams.worker.metrics import scrape

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await asyncio.to_thread(scrape, self.metrics_port)).get("metastream_worker_ready") == 1.0:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError("the worker did not get ready")

    async def wait_metric(self, name: str, at_least: float, timeout: float) -> bool:
        """Wait until the worker's gauge ``name`` is at least ``at_least``; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await asyncio.to_thread(self.metrics)).get(name, 0.0) >= at_least:
                return True
            await asyncio.sleep(1.0)
        return False

    def metrics(self) -> dict[str, float]:
        from streams.worker.metrics import scrape

        return scrape(self.metrics_port)

    async def drive(self) -> None:
        """The fleet: served tasks at ``rate`` experiences/s, plus the noisy agents' random targets."""
        from streams.simulation.fleet import publish_served_tasks

        fleet = self.fleet
        while True:
            tick = time.monotonic()
            if self.hold:
                await asyncio.sleep(0.1)
                continue
            try:
                await self.sub.poll(5)
                self.sub.take_arrivals()
                canary = self.sub.aliases["sine"].canary if "sine" in self.sub.aliases else None
                if self.bad_next is not None and canary is not None and canary != self.bad_after:
                    kind, amount = self.bad_next  # the fault is in the next version agents are served
                    (self.loss_faults if kind == "loss" else self.slow_faults)[canary] = amount
                    self.bad_next, self.tagged, self.tagged_at = None, canary, time.monotonic()
                self.sent += await publish_served_tasks(self.pub, fleet, self.sub, self.rate * 0.1, "sine", agents=40,
                                                        faults=self.loss_faults, slow=self.slow_faults, on_report=self.report)
                for agent in self.noisy:
                    tid, x, y = fleet.sample_task()
                    await self.pub.publish("sine", x, np.random.default_rng(self.sent).normal(0, 3, y.shape), [f"noise-{tid}"] * len(x),
                                           agent_id=agent)
                    self.sent += len(x)
            except Exception as exc:  # noqa: BLE001 - a broker pause stalls or fails sends; the fleet keeps trying
                print(f"  fleet: {type(exc).__name__}: {exc}", flush=True)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))

    def served_versions(self) -> tuple[int | None, int | None]:
        """(champion, canary) as the agents' subscriber sees them now."""
        aliases = self.sub.aliases.get("sine")
        return (aliases.champion, aliases.canary) if aliases is not None else (None, None)

    def report(self, agent: str, version: int, losses, latency_ms: float) -> None:
        now = time.time()
        self.window.append((now, float(np.mean(losses)), latency_ms, agent))
        if len(self.window) > 20000:
            self.window = self.window[-10000:]

    def level(self, seconds: float = 8.0) -> tuple[float, float]:
        """The clean agents' mean reported loss and their p95 latency over the last ``seconds``."""
        cutoff = time.time() - seconds
        rows = [(loss, lat) for t, loss, lat, agent in self.window if t >= cutoff]
        if not rows:
            return float("nan"), float("nan")
        losses, lats = zip(*rows)
        return float(np.mean(losses)), float(np.percentile(lats, 95))

    async def events(self) -> list[dict]:
        from streams.kafka.topics import read_records

        return [rec for _, rec in await read_records(self.broker.bootstrap, "events", "DecisionEvent")]

    def stop(self) -> None:
        stop_worker(self.worker)
        self.broker.stop()
