"""Integration fixtures: a real Tansu broker over TCP per test, and real worker processes."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker, ensure_topics, free_port
from streams.worker.metrics import scrape
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOPICS = Settings().topics.configs()


def publish_rounds(bootstrap: str, fleet, model_id: str, rounds: int, drift_from: int, tasks: int = 30,
                   after_round=None) -> int:
    """Publish ``fleet``'s tasks in rounds of ``tasks`` (0.8 s apart), the distribution drifting
    from round ``drift_from``; ``after_round(publisher)`` (async) runs after each round's flush.
    Returns the wall-clock ms when the first drifted task went out."""
    from streams.client import ExperiencePublisher

    drift_ms = 0

    async def publish() -> None:
        nonlocal drift_ms
        async with ExperiencePublisher(bootstrap, linger_ms=5) as pub:
            for round_no in range(rounds):
                if round_no == drift_from:
                    drift_ms = int(time.time() * 1000)
                fleet.drift(round_no >= drift_from)
                for _ in range(tasks):
                    tid, x, y = fleet.sample_task()
                    await pub.publish(model_id, x, y, [tid] * len(x))
                await pub.flush()
                if after_round is not None:
                    await after_round(pub)
                await asyncio.sleep(0.8)

    asyncio.run(publish())
    return drift_ms


def publish_until(bootstrap: str, fleet, model_id: str, done, drifted: bool, tries: int, rounds: int = 2):
    """Publish rounds of ``fleet``'s tasks (drifted or not) until ``done()`` is truthy, at most
    ``tries`` times; returns its last value. A worker's pace depends on the machine: a test that
    needs a trained champion before its drift, or an alarm after it, waits for that, not for a
    number of rounds."""
    value = done()
    for _ in range(tries):
        if value:
            break
        publish_rounds(bootstrap, fleet, model_id, rounds=rounds, drift_from=0 if drifted else rounds)
        value = done()
    return value


@pytest.fixture
def broker():
    with EmbeddedBroker() as b:
        asyncio.run(ensure_topics(b.bootstrap, TOPICS, 2))
        yield b


def metrics(port: int) -> dict[str, float]:
    """Sum of each metastream metric over its labels (also '<name>{label="x"}' keys)."""
    return scrape(port)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")


def wait_committed(bootstrap: str, timeout: float = 30, group: str = "metastream-test", topic: str = "experiences") -> None:
    """Until the worker group has committed every message of ``topic`` (it commits every second):
    a worker killed after this loses nothing it read, and a restart replays exactly that."""
    from streams.kafka.topics import committed_offsets, end_offsets

    def done():
        ends = asyncio.run(end_offsets(bootstrap, topic))
        committed = asyncio.run(committed_offsets(bootstrap, topic, group))
        return all(committed.get(p, 0) >= end for p, end in ends.items())

    wait_for(done, timeout, f"{group} to commit every message of {topic}", interval=0.5)


def wait_settled(worker: "WorkerProcess", rows: int, timeout: float = 120) -> dict[str, float]:
    """Until the worker has ingested ``rows`` experiences and no update of any model runs or waits,
    over two looks a second apart (an update a last message asks for starts just after it is
    counted); returns its metrics."""
    def quiet():
        m = worker.metrics()
        return m if m.get("metastream_experiences_ingested_total") == rows and m.get("metastream_updates_in_flight", 0) == 0 else None

    def twice():
        return quiet() and (time.sleep(1.0) or quiet())

    return wait_for(twice, timeout, f"{rows} experiences ingested and no update in flight")


class WorkerProcess:
    def __init__(self, bootstrap: str, log: Path, **env: str) -> None:
        self.port = free_port()
        self.web_port = free_port()
        self.log = log
        self.env = dict(os.environ, METASTREAM_KAFKA=bootstrap, METASTREAM_METRICS_PORT=str(self.port), METASTREAM_WEB_PORT=str(self.web_port),
                        METASTREAM_PARTITIONS="2", PYTHONPATH=str(ROOT), **env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--loglevel", "INFO"], env=self.env,
                                     cwd=ROOT, stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.metrics().get("metastream_worker_ready") == 1.0 or self._dead(), 60, "the worker to be ready")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        return self

    def _dead(self) -> bool:
        return self.proc.poll() is not None

    def metrics(self) -> dict[str, float]:
        return scrape(self.port, token=self.env.get("METASTREAM_ACCESS_TOKEN", ""))

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def worker_factory(broker, tmp_path):
    started = []

    def make(**env) -> WorkerProcess:
        defaults = {"METASTREAM_NEW_TASKS_TRIGGER": "30", "METASTREAM_UPDATE_ITERATIONS": "40",
                    "METASTREAM_APP_ID": "metastream-test", "METASTREAM_SNAPSHOT_DIR": str(tmp_path / "snapshots")}
        w = WorkerProcess(broker.bootstrap, tmp_path / f"worker{len(started)}.log", **{**defaults, **env})
        started.append(w)
        return w

    yield make
    for w in started:  # what a test checks of a clean shutdown it checks itself: the rest end at once
        w.kill()
