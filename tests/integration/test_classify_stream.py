"""Few-shot *classification* through a real worker on the embedded broker: 5-way 1-shot digit
tasks (labels name classes only within their task), then a drift (the images arrive rotated a
quarter turn). The published versions learn the rotated tasks while their accuracy on fresh upright
tasks (from images the stream never carried) stays within 5 points of the best it had; a batch
whose labels are not whole numbers goes to the dead-letter topic."""

import asyncio
import json
import time

import numpy as np
import torch

from learners.guard import score_points
from learners.tasks.base import TaskBatch
from streams.client import ExperiencePublisher, load_model_version
from streams.fleet import DigitFleet
from streams.rebuild import _read_range
from streams.publishing import MODEL_VERSIONS

from .conftest import wait_for

ROUNDS, DRIFT_FROM, TASKS = 20, 10, 30


def _fresh_tasks(rotated: bool, n: int = 200) -> TaskBatch:
    """1 support image and 9 query images per class, from the held-out test images."""
    fleet = DigitFleet(seed=999, per_class=10, split="test")
    sx, sy, qx, qy = [], [], [], []
    for _ in range(n):
        _, x, y = fleet.sample_task(rotated)
        order = np.argsort(y[:, 0], kind="stable")
        x, y = x[order].reshape(5, 10, -1), y[order, 0].reshape(5, 10).astype("int64")
        sx.append(x[:, :1].reshape(5, -1)), sy.append(y[:, :1].reshape(5))
        qx.append(x[:, 1:].reshape(45, -1)), qy.append(y[:, 1:].reshape(45))
    return TaskBatch(*(torch.from_numpy(np.stack(a)) for a in (sx, sy, qx, qy)))


def _stream(bootstrap: str) -> int:
    fleet = DigitFleet(seed=5)
    drift_ms = 0

    async def publish() -> None:
        nonlocal drift_ms
        async with ExperiencePublisher(bootstrap, linger_ms=5) as pub:
            for round_no in range(ROUNDS):
                if round_no == DRIFT_FROM:
                    drift_ms = int(time.time() * 1000)
                fleet.drift(round_no >= DRIFT_FROM)
                for _ in range(TASKS):
                    tid, x, y = fleet.sample_task()
                    await pub.publish("digits", x, y, [tid] * len(x))
                await pub.flush()  # the malformed batch goes in a message of its own
                await pub.publish("digits", np.zeros((2, 196), "f4"), np.array([[0.5], [1.0]], "f4"), ["bad", "bad"])
                await pub.flush()
                await asyncio.sleep(0.8)

    asyncio.run(publish())
    return drift_ms


async def _read(bootstrap: str, topic: str):
    return [msg async for msg in _read_range(bootstrap, topic, None)]


def test_classifier_learns_rotated_digits_without_forgetting_upright_ones(broker, worker_factory):
    worker = worker_factory(METASTREAM_MODELS=json.dumps({"digits": "digits"}), METASTREAM_NEW_TASKS_TRIGGER="30",
                            METASTREAM_UPDATE_ITERATIONS="60").start()
    drift_ms = _stream(broker.bootstrap)
    wait_for(lambda: worker.metrics().get("metastream_experiences_ingested_total") == ROUNDS * TASKS * 20, 60, "every experience")
    time.sleep(3)  # the last update finishes
    assert worker.metrics().get('metastream_experiences_rejected_total{reason="bad_label"}') == ROUNDS
    versions = sorted((MODEL_VERSIONS.decode(m.value) for m in asyncio.run(_read(broker.bootstrap, "models"))),
                      key=lambda r: r["version"])
    loaded = [load_model_version(r) for r in versions if r["model_id"] == "digits"]
    before = [m for m in loaded if m.created_at_ms <= drift_ms]
    after = [m for m in loaded if m.created_at_ms > drift_ms]
    assert before and after, [(m.version, m.created_at_ms - drift_ms) for m in loaded]
    upright = _fresh_tasks(False)
    old_scores = [score_points(m.learner, upright) for m in loaded]
    assert max(old_scores) > 60, old_scores  # 5-way: chance is 20
    for i, s in enumerate(old_scores):
        assert s >= max(old_scores[: i + 1]) - 5.0, old_scores
    rotated = _fresh_tasks(True)
    assert score_points(after[-1].learner, rotated) > score_points(before[-1].learner, rotated) + 2.0
