"""Few-shot *classification* through a real worker on the embedded broker: 5-way 1-shot digit
tasks (labels name classes only within their task), then a drift (the images arrive rotated a
quarter turn). The published versions learn the rotated tasks while their accuracy on fresh upright
tasks (from images the stream never carried) stays within 5 points of the best it had; a batch
whose labels are not whole numbers goes to the dead-letter topic."""

import asyncio
import json

import numpy as np
import torch

from learners.online import score_points
from learners.tasks.base import TaskBatch
from streams.client import load_model_version
from streams.simulation.fleet import DigitFleet
from schemas import codec_for
from streams.kafka.topics import read_range

from .conftest import publish_rounds, wait_settled

ROUNDS, DRIFT_FROM, TASKS = 20, 10, 30


def _fresh_tasks(rotated: bool, n: int = 200) -> TaskBatch:
    """1 support and 9 query images per class, from the held-out test images."""
    fleet = DigitFleet(seed=999, per_class=10, split="test")
    episodes = [fleet.episode(rotated) for _ in range(n)]
    return TaskBatch(*(torch.from_numpy(np.stack(part)) for part in zip(*episodes)))


async def _malformed(pub) -> None:
    """A batch whose labels are not whole numbers, in a message of its own."""
    await pub.publish("digits", np.zeros((2, 196), "f4"), np.array([[0.5], [1.0]], "f4"), ["bad", "bad"])
    await pub.flush()


async def _read(bootstrap: str, topic: str):
    return [msg async for msg in read_range(bootstrap, topic)]


def test_classifier_learns_rotated_digits_without_forgetting_upright_ones(broker, worker_factory):
    worker = worker_factory(METASTREAM_MODELS=json.dumps({"digits": "digits"}), METASTREAM_NEW_TASKS_TRIGGER="30",
                            METASTREAM_UPDATE_ITERATIONS="60").start()
    drift_ms = publish_rounds(broker.bootstrap, DigitFleet(seed=5), "digits", ROUNDS, DRIFT_FROM, TASKS, _malformed)
    wait_settled(worker, ROUNDS * TASKS * 20)
    assert worker.metrics().get('metastream_experiences_rejected_total{reason="bad_label"}') == ROUNDS
    versions = sorted((codec_for("ModelVersion").decode(m.value) for m in asyncio.run(_read(broker.bootstrap, "models"))),
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
