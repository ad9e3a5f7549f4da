"""Take ``docs/status.png``: the status page of a real worker after a minute of the simulated fleet
(40 sine agents served by cohort, one of them sending random targets, a drift half-way), shot with
headless Chromium.

    python docs/status_screenshot.py [--seconds 90] [--out docs/status.png]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def drive(bootstrap: str, seconds: float) -> None:
    from streams.client import ExperiencePublisher, ModelSubscriber
    from streams.simulation.fleet import SineFleet, publish_served_tasks

    fleet = SineFleet(seed=1)
    async with ExperiencePublisher(bootstrap, linger_ms=5) as pub, ModelSubscriber(bootstrap, model_ids=["sine"]) as sub:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            tick = time.monotonic()
            await sub.poll(5)
            fleet.drift(elapsed > seconds / 2)
            await publish_served_tasks(pub, fleet, sub, 60, "sine", agents=40)
            if elapsed > 10:  # one careless agent
                tid, x, y = fleet.sample_task()
                await pub.publish("sine", x, np.random.default_rng(int(elapsed * 10)).normal(0, 3, y.shape),
                                  [f"noise-{tid}"] * len(x), agent_id="agent-careless")
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "status.png"))
    args = ap.parse_args()
    from streams.kafka.broker import EmbeddedBroker, ensure_topics_sync, free_port
    from streams.worker.metrics import scrape
    from streams.settings import Settings

    web, metrics = free_port(), free_port()
    with EmbeddedBroker() as broker:
        ensure_topics_sync(broker.bootstrap, Settings().topics.configs(), 2)
        env = dict(os.environ, METASTREAM_KAFKA=broker.bootstrap, METASTREAM_WEB_PORT=str(web), METASTREAM_METRICS_PORT=str(metrics),
                   METASTREAM_PARTITIONS="2", METASTREAM_NEW_TASKS_TRIGGER="120", METASTREAM_ROLLOUT_MIN_SAMPLES="20",
                   PYTHONPATH=str(ROOT))
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            while scrape(metrics).get("metastream_worker_ready") != 1.0:
                time.sleep(0.5)
            asyncio.run(drive(broker.bootstrap, args.seconds))
            subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            "--window-size=1280,1500", f"--screenshot={args.out}", f"http://127.0.0.1:{web}/status"],
                           check=True, capture_output=True, timeout=120)
        finally:
            worker.terminate()
            worker.wait(30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
