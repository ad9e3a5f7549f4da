"""Online model selection in a real worker on the embedded broker: a tabular model whose champion
barely learns (a meta learning rate of 1e-7) keeps a shadow candidate with the preset's rate
(1e-3). Both are scored on the same incoming tasks of River's ImageSegments rows; the bandit gives
the shadow every other update; once it leads by the margin it challenges, goes through the gate
and is published: a ``ShadowChallenged`` and a ``ChampionSwitched`` event with the figures, and
the newest version carries the shadow's config. ``models show`` prints each feature's importance."""

import asyncio
import json
import time

import numpy as np

from learners.tabular.river_streams import load_stream
from schemas import codec_for
from streams.client import ExperiencePublisher
from streams.catalog.presets import tabular_model
from streams.simulation.tabular_fleet import TabularFleet
from streams.kafka.topics import read_range

from .conftest import wait_for

PER_CLASS = 10


async def _records(bootstrap: str, topic: str, kind: str) -> list[dict]:
    return [codec_for(kind).decode(m.value) async for m in read_range(bootstrap, topic)]


def _events(bootstrap: str) -> list[dict]:
    return asyncio.run(_records(bootstrap, "events", "DecisionEvent"))


def test_a_shadow_that_scores_better_on_the_same_tasks_becomes_the_champion(broker, worker_factory, cli):
    table = load_stream("segment")
    config = tabular_model(18, names=list(table.names), shadows=[{"learner": {"meta_lr": 1e-3}}])
    config["learner"]["meta_lr"] = 1e-7  # a champion that cannot learn
    worker = worker_factory(METASTREAM_MODELS=json.dumps({"segment": config}), METASTREAM_NEW_TASKS_TRIGGER="30",
                            METASTREAM_UPDATE_ITERATIONS="60", METASTREAM_MAX_POINTS_PER_TASK="50",
                            METASTREAM_ROLLOUT="0").start()
    fleet = TabularFleet(table, 5, PER_CLASS, missing=0.05, seed=4)

    def switched() -> bool:
        return any(e["event_type"] == "ChampionSwitched" for e in _events(broker.bootstrap))

    async def publish() -> None:
        async with ExperiencePublisher(broker.bootstrap, linger_ms=5) as pub:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                for _ in range(30):
                    tid, x, y = fleet.sample_task()
                    await pub.publish("segment", x, y, [tid] * len(x))
                await pub.flush()
                await asyncio.sleep(1.5)
                if await asyncio.to_thread(switched):
                    return

    asyncio.run(publish())
    events = _events(broker.bootstrap)
    kinds = [e["event_type"] for e in events]
    assert "ShadowChallenged" in kinds and "ChampionSwitched" in kinds, kinds
    challenge = next(e for e in events if e["event_type"] == "ShadowChallenged")
    assert challenge["cause"] == "shadow" and "learner.meta_lr=0.001" in challenge["reason"]
    assert challenge["figures"]["gain"] > 0.02 and challenge["figures"]["prequential_tasks"] >= 32
    switch = next(e for e in events if e["event_type"] == "ChampionSwitched")
    assert switch["figures"]["candidate_accuracy"] >= switch["figures"]["champion_accuracy"] - 0.05
    versions = sorted(asyncio.run(_records(broker.bootstrap, "models", "ModelVersion")), key=lambda r: r["version"])
    made = next(r for r in versions if r["version"] == switch["version"])
    assert json.loads(made["config_json"])["learner"]["meta_lr"] == 1e-3  # the shadow's config travels with it
    assert json.loads(versions[0]["config_json"])["learner"]["meta_lr"] == 1e-7
    wait_for(lambda: worker.metrics().get('metastream_candidate_reward{candidate="learner.meta_lr=0.001",model_id="segment",'
                                          'role="champion"}') is not None, 30, "the switched roles in the metrics")
    shown = json.loads(cli("models", "show", "segment", "--kafka", broker.bootstrap).stdout)
    importance = [p["importance"] for p in shown["pipeline"]]
    assert all(v is not None for v in importance) and max(importance) > 0
    assert np.isfinite(importance).all()
