"""New agent types on a real worker: with ``METASTREAM_NEW_MODELS`` a model id the worker was not
told about is adopted when it matches a pattern, starts from the most similar existing model by
task encoding (a ``ModelCreated`` event with the similarities; the choice stays in its versions'
config), and its first version rebuilds byte-identical from the log. Ids no pattern matches, and
hostile ones, still go to the dead-letter topic."""

import asyncio
import json
import time

from learners.tabular.river_streams import load_stream
from schemas import codec_for
from streams.client import ExperiencePublisher
from streams.simulation.tabular_fleet import TabularFleet
from streams.kafka.topics import read_range

from .conftest import wait_for
from .test_audit_rebuild import _cli


async def _records(bootstrap: str, topic: str, kind: str) -> list[dict]:
    return [codec_for(kind).decode(m.value) async for m in read_range(bootstrap, topic)]


def _latest(bootstrap: str, model_id: str) -> dict | None:
    versions = [r for r in asyncio.run(_records(bootstrap, "models", "ModelVersion")) if r["model_id"] == model_id]
    return max(versions, key=lambda r: r["version"]) if versions else None


async def _send(bootstrap: str, fleet: TabularFleet, model_id: str, tasks: int) -> None:
    async with ExperiencePublisher(bootstrap, linger_ms=5) as pub:
        for _ in range(tasks):
            tid, x, y = fleet.sample_task()
            await pub.publish(model_id, x, y, [f"{model_id}-{tid}"] * len(x))
        await pub.flush()


def test_an_unknown_model_id_that_matches_the_policy_starts_from_the_most_similar_model(broker, worker_factory, cli, tmp_path):
    table = load_stream("segment")
    policy = [{"pattern": "segment-*", "model": {"preset": "tabular", "features": 18}}]
    worker = worker_factory(METASTREAM_MODELS=json.dumps({"segment": {"preset": "tabular", "features": 18}}),
                            METASTREAM_NEW_MODELS=json.dumps(policy), METASTREAM_NEW_TASKS_TRIGGER="30",
                            METASTREAM_UPDATE_ITERATIONS="40", METASTREAM_MAX_POINTS_PER_TASK="50", METASTREAM_ROLLOUT="0").start()
    source = TabularFleet(table, 5, 10, missing=0.05, seed=1)
    deadline = time.monotonic() + 120
    while _latest(broker.bootstrap, "segment") is None and time.monotonic() < deadline:
        asyncio.run(_send(broker.bootstrap, source, "segment", 30))
        time.sleep(1.0)
    assert _latest(broker.bootstrap, "segment") is not None, "the existing model never published"

    newcomer = TabularFleet(table, 5, 10, missing=0.05, seed=2)
    asyncio.run(_send(broker.bootstrap, newcomer, "intruder", 2))  # no pattern matches: dead-lettered
    asyncio.run(_send(broker.bootstrap, newcomer, "segment-" + "x" * 200, 2))  # matches, but no sane id is that long
    deadline = time.monotonic() + 120
    while _latest(broker.bootstrap, "segment-team2") is None and time.monotonic() < deadline:
        asyncio.run(_send(broker.bootstrap, newcomer, "segment-team2", 30))
        time.sleep(1.0)
    created = [e for e in asyncio.run(_records(broker.bootstrap, "events", "DecisionEvent"))
               if e["event_type"] == "ModelCreated"]
    assert [e["model_id"] for e in created] == ["segment-team2"], created
    assert created[0]["cause"] == "cold_start" and "starts from segment v" in created[0]["reason"]
    assert 0 < created[0]["figures"]["similarity"] <= 1 and "similarity_segment" in created[0]["figures"]
    first = _latest(broker.bootstrap, "segment-team2")
    assert first is not None, "the adopted model never published"
    assert json.loads(first["config_json"])["warm_start"]["model_id"] == "segment"
    wait_for(lambda: worker.metrics().get('metastream_experiences_rejected_total{reason="unknown_model"}', 0) == 4, 30,
             "the unmatched and the over-long ids dead-lettered")
    v1 = next(r for r in asyncio.run(_records(broker.bootstrap, "models", "ModelVersion"))
              if r["model_id"] == "segment-team2" and r["version"] == 1)
    rebuilt = _cli(broker.bootstrap, "segment-team2", "1")
    report = json.loads(rebuilt.stdout)
    assert report["identical"], report  # its starting weights (the source's version) come back from the log
    assert report["expected_sha256"] == v1["sha256"]

    near = json.loads(cli("similar", "segment-team2", "--kafka", broker.bootstrap, "--json").stdout)["nearest"]
    assert [n["model_id"] for n in near] == ["segment"] and 0 < near[0]["similarity"] <= 1 and near[0]["tasks"] > 0
    rows = tmp_path / "my-task.csv"
    _, x, y = newcomer.sample_task()
    with open(rows, "w") as f:
        f.write(",".join([*table.names, "label"]) + "\n")
        f.writelines(",".join([*("" if v != v else f"{v:.6g}" for v in row), str(int(c))]) + "\n" for row, c in zip(x, y[:, 0]))
    near = json.loads(cli("similar", rows, "--label", "label", "--kafka", broker.bootstrap, "--json").stdout)["nearest"]
    assert {n["model_id"] for n in near} == {"segment", "segment-team2"}
    assert near[0]["similarity"] >= near[1]["similarity"]
    missing = cli("similar", "nobody", "--kafka", broker.bootstrap, check=False)
    assert missing.returncode == 2 and "neither a model" in missing.stderr
