"""The README's main job, shortened: ``metastream demo`` (sine, and ``--task digits``) starts its
own embedded broker and worker process, publishes a fleet's tasks with a drift, and summarises the
versions it received."""

import asyncio
import math

import pytest

from streams.demo import run_demo


@pytest.mark.parametrize("task,metric", [("sine", "mse"), ("digits", "accuracy")])
def test_demo_publishes_versions_and_summarises_them(task, metric):
    s = asyncio.run(run_demo(duration=25.0, drift_at=0.5, rate=1000.0, seed=0, task=task))
    assert s.published > 10_000 and s.drift_injected_at is not None
    assert s.versions, "the worker published no version"
    assert s.champion is not None and s.rollouts  # the live table shows the rollout: at least the first champion
    latest = s.summary[f"latest_on_old_{metric}"]
    assert math.isfinite(latest)
    if metric == "accuracy":
        assert latest > 50  # 5-way: chance is 20


def test_demo_rejects_an_unknown_task():
    with pytest.raises(ValueError, match="unknown demo task"):
        asyncio.run(run_demo(duration=1.0, task="tabular"))
