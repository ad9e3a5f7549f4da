"""Publish experiences, a worker learns, a new version appears on models, a subscriber loads it
and adapts it; operators list versions and replay topics. All over TCP against the embedded broker."""

import asyncio
import json
import subprocess
import sys

import numpy as np
import torch

from streams.client import ExperiencePublisher, ModelSubscriber, SyncExperiencePublisher
from streams.simulation.fleet import SineFleet

from .conftest import ROOT, wait_settled


async def _publish_tasks(bootstrap, fleet, tasks):
    async with ExperiencePublisher(bootstrap, agent_id="agent-a", agent_type="sim") as pub:
        for _ in range(tasks):
            tid, x, y = fleet.sample_task()
            await pub.publish("sine", x, y, [tid] * len(x))
    return pub.sent_messages


def test_publish_learn_publish_subscribe_adapt(broker, worker_factory):
    worker = worker_factory().start()
    fleet = SineFleet(seed=1)
    sent = asyncio.run(_publish_tasks(broker.bootstrap, fleet, 60))
    assert sent >= 60 * 40 // 64

    async def subscribe():
        async with ModelSubscriber(broker.bootstrap) as sub:
            return await sub.latest("sine", timeout=60)

    model = asyncio.run(subscribe())
    assert model.version >= 1 and model.lineage and model.lineage[0]["topic"] == "experiences"
    assert set(model.metrics) >= {"candidate_mse", "champion_mse"}
    # the loaded weights adapt to a consumer's few examples: 10 steps on 10 points fit them better
    before, after = [], []
    for _ in range(20):
        _, x, y = fleet.sample_task()
        with torch.no_grad():
            before.append(float(((model.learner.model(torch.tensor(x[:10])).numpy() - y[:10]) ** 2).mean()))
        after.append(float(((model.predict(model.adapt(x[:10], y[:10]), x[:10]).numpy() - y[:10]) ** 2).mean()))
    assert np.mean(after) < np.mean(before)
    wait_settled(worker, 60 * 40, 60)  # all experiences in, no update running: the listings below see one registry

    env = {"METASTREAM_KAFKA": broker.bootstrap, "PYTHONPATH": str(ROOT), "COLUMNS": "150"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "streams.cli", *a], capture_output=True, text=True,
                                    env={**__import__("os").environ, **env}, cwd=ROOT, timeout=60)
    listed = [json.loads(line) for line in run("models", "ls", "--json").stdout.splitlines()]
    versions = [r["version"] for r in listed if r["model_id"] == "sine"]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert all(len(r["sha256"]) == 64 for r in listed)  # the whole hash: a script compares it
    # published as candidates; the stage now comes from the rollout's events: one champion, served to agents
    assert {r["published_stage"] for r in listed} == {"CANDIDATE"}
    assert [r["stage"] for r in listed].count("PRODUCTION") == 1
    assert {r["stage"] for r in listed} <= {"PRODUCTION", "CANARY", "ROLLED_BACK", "RETIRED", "CANDIDATE"}
    # off a terminal: a header and complete tab-separated rows, nothing cut at 80 columns
    table = [line.split("\t") for line in run("models", "ls").stdout.splitlines()]
    assert table[0][:2] == ["model", "version"] and len(table) == len(listed) + 1
    assert [row[5] for row in table[1:]] == [r["sha256"] for r in listed]
    assert all(row[4] == r["created"] and row[4].endswith("+00:00") for row, r in zip(table[1:], listed))
    shown = json.loads(run("models", "show", "sine", "--version", "1").stdout)
    assert shown["version"] == 1 and shown["config"]["algo"] == "fomaml" and len(shown["sha256"]) == 64
    # every experience is keyed by model id, so all of them sit in one partition
    lines = [json.loads(line) for line in run("replay", "--topic", "experiences", "--from-offset", "1", "--to", "3").stdout.splitlines()]
    assert [line["offset"] for line in lines] == [1, 2, 3]
    assert lines[0]["value"]["model_id"] == "sine" and lines[0]["value"]["agent_id"] == "agent-a"
    assert lines[0]["type"] == "ExperienceBatch" and lines[0]["key"] == "sine"
    ids = lines[0]["value"]["event_ids"]  # 64 ids: summarised unless --full
    assert ids["count"] == 64 and set(ids) == {"count", "distinct", "first", "last"}
    full = json.loads(run("replay", "--topic", "experiences", "--from-offset", "1", "--to", "1", "--full").stdout)
    assert len(full["value"]["event_ids"]) == 64 and full["value"]["event_ids"][0] == ids["first"]
    events = [json.loads(line)["value"]["event_type"] for line in run("replay", "--topic", "events").stdout.splitlines()]
    assert "UpdateStarted" in events and "VersionPublished" in events


def test_sync_publisher_batches_with_linger(broker):
    with SyncExperiencePublisher(broker.bootstrap, batch_size=64, linger_ms=20) as pub:
        ids = pub.publish("sine", np.zeros((100, 1)), np.zeros((100, 1)), ["t"] * 100)
        pub.flush()
        assert len(set(ids)) == 100
        assert pub._pub.sent_messages == 2  # 64 + the 36 that lingered


def test_rows_a_linger_timer_is_sending_when_the_publisher_closes_are_not_lost(broker):
    """Rows whose linger timer fired just before the publisher closed are on their way: they reach
    the topic before the producer stops (they were lost when close did not wait for them)."""
    from schemas.experiences import id_columns
    from streams.kafka.topics import read_records

    async def publish() -> list[str]:
        ids = []
        async with ExperiencePublisher(broker.bootstrap, linger_ms=1) as pub:
            for agent in range(200):  # a batch per agent, each lingering
                ids += await pub.publish("sine", np.zeros((20, 196)), np.zeros((20, 1)), ["t"] * 20, agent_id=f"a{agent}")
            await asyncio.sleep(0.002)  # the timers fire: their sends start as the publisher closes
        return ids

    ids = asyncio.run(publish())
    got = {i for _, rec in asyncio.run(read_records(broker.bootstrap, "experiences", "ExperienceBatch")) for i in id_columns(rec)[0]}
    assert len(ids) == 4000 and not set(ids) - got, f"{len(set(ids) - got)} rows lost"


def test_subscriber_refuses_tampered_weights(broker):
    from streams.client import IntegrityError, load_model_version
    from schemas import codec_for
    from streams.records.wire import model_version
    from learners.online import OnlineMetaLearner
    from streams.settings import Settings
    import pytest

    cfg = Settings().catalog.models["sine"]
    weights = OnlineMetaLearner(cfg).weights_bytes()
    rec = codec_for("ModelVersion").decode(model_version("sine", 1, None, "fomaml", weights, cfg, {}, []))
    assert load_model_version(rec).version == 1
    rec["weights"] = weights[:-4] + b"\x00\x00\x00\x00"
    with pytest.raises(IntegrityError):
        load_model_version(rec)
