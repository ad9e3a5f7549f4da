"""The README's main job, shortened: ``metastream demo`` (sine, and ``--task digits``) starts its
own embedded broker and worker process, publishes a fleet's tasks with a drift, and summarises the
versions it received: versions before the drift, improvements that reach the agents (the
champion at the end is not the first version), versions after the drift."""

import asyncio

import pytest

from streams.simulation.demo import run_demo


def test_the_sine_demo_serves_improved_versions_and_answers_the_drift():
    s = asyncio.run(run_demo(duration=60.0, drift_at=0.5, rate=1000.0, seed=0, task="sine"))
    sm = s.summary
    assert s.published > 20_000 and s.drift_injected_at is not None
    assert s.versions, "the worker published no version"
    before = [v for v, t, _ in s.versions if t < s.drift_injected_at]
    assert before, ("no version before the drift", s.versions, s.drift_injected_at)
    assert sm.get("champion_at_drift") is not None and sm["champion"] > 1, (sm, s.rollouts)  # improvements reached the agents
    assert sm["latest_version"] > sm["pre_drift_version"], sm  # versions go on after the drift
    # how well the versions fit (the README's 100-second demo) is not judged on a minute shared with other tests


def test_the_digits_demo_learns_the_digits():
    s = asyncio.run(run_demo(duration=25.0, drift_at=0.5, rate=1000.0, seed=0, task="digits"))
    assert s.versions, "the worker published no version"
    assert s.champion is not None and s.rollouts  # the live table shows the rollout: at least the first champion
    assert s.summary["latest_on_old_accuracy"] > 50, s.summary  # 5-way: chance is 20


def test_demo_rejects_an_unknown_task():
    with pytest.raises(ValueError, match="unknown demo task"):
        asyncio.run(run_demo(duration=1.0, task="tabular"))
