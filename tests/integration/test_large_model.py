"""A model over the producer's default 1 MB request: a worker publishes a version of a 20+ MB
model whole (its producer's request size and the models topic's max.message.bytes raised
together, ``METASTREAM_MAX_MESSAGE_MB``) and a subscriber loads it, sha256 checked."""

import asyncio
import json

import numpy as np

from streams.catalog.presets import sine_model
from streams.client import ModelSubscriber
from streams.kafka.retention import topic_configs
from streams.simulation.fleet import SineFleet

from .conftest import publish_rounds, wait_for

HIDDEN = 2300  # a 2-layer MLP of this width: 5.3 M float32 parameters, 21 MB of weights


def test_a_worker_publishes_and_a_subscriber_loads_a_20_mb_model(broker, worker_factory):
    config = sine_model()
    config["backbone"]["hidden"] = HIDDEN
    config["learner"]["test_steps"] = 1  # scoring adapts every task: one step keeps the wide model's cost down
    worker = worker_factory(METASTREAM_MODELS=json.dumps({"big": config}), METASTREAM_UPDATE_ITERATIONS="2",
                            METASTREAM_NEW_TASKS_TRIGGER="30", METASTREAM_ROLLOUT="0", METASTREAM_GUARD="0").start()
    publish_rounds(broker.bootstrap, SineFleet(seed=3), "big", rounds=2, drift_from=99)
    wait_for(lambda: worker.metrics().get("metastream_versions_published_total", 0) >= 1, 240,
             "a published version of the 20 MB model")

    async def load():
        async with ModelSubscriber(broker.bootstrap, model_ids=["big"]) as sub:
            return await sub.latest("big", timeout=60)

    model = asyncio.run(load())
    assert len(model.record["weights"]) > 20 * 2**20
    assert np.isfinite(model.predict(model.adapt(np.zeros((5, 1)), np.zeros((5, 1))), np.zeros((3, 1))).numpy()).all()
    configs = asyncio.run(topic_configs(broker.bootstrap, ["models"]))
    assert int(configs["models"]["max.message.bytes"]) >= 64 * 2**20
