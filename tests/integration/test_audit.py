"""`metastream audit MODEL VERSION` on a real worker's log: the parent chain back to v1, the
experience offsets each version learned from, its config and seed, and the decisions about it."""

import json
import os
import subprocess
import sys

from streams.simulation.fleet import SineFleet

from .conftest import ROOT, publish_rounds, wait_for


def _audit(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "METASTREAM_KAFKA": bootstrap, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "streams.cli", "audit", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


def test_audit_shows_where_a_version_came_from(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="30").start()
    publish_rounds(broker.bootstrap, SineFleet(seed=6), "sine", rounds=4, drift_from=99)
    wait_for(lambda: worker.metrics().get("metastream_versions_published_total", 0) >= 2, 90, "two versions")
    version = int(worker.metrics()["metastream_champion_version"])
    trail = json.loads(_audit(broker.bootstrap, "sine", str(version), "--json").stdout)
    assert [link["version"] for link in trail["chain"]] == list(range(version, 0, -1)) and trail["chain_complete"]
    assert trail["lineage"] and trail["messages"] > 0 and all(r["topic"] == "experiences" for r in trail["lineage"])
    assert trail["config"]["algo"] and isinstance(trail["seed"], int)
    assert "VersionPublished" in [d["type"] for d in trail["decisions"]]
    missing = _audit(broker.bootstrap, "sine", "999")
    assert missing.returncode != 0 and "sine v999 is not on the models topic" in missing.stderr + missing.stdout
