"""The registry API on the embedded broker: versions listed with stage, aliases and tags; a
version got by number or ``name@alias``; user-defined aliases and tags set from Python (async and
sync) and the CLI, read back by every reader; bad references answered with what exists."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from streams.client import ModelRegistry, RegistryError, SyncModelRegistry
from streams.simulation.fleet import SineFleet

from .conftest import ROOT, publish_until, wait_for


def cli(bootstrap, *args):
    env = {**os.environ, "METASTREAM_KAFKA": bootstrap, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=90)


RUN_WITHOUT_THE_PROJECT = """
import sys
for name in ("learners", "streams", "schemas"):
    sys.modules[name] = None  # any import of this project's code now fails
import torch
path = sys.argv[1]
model = torch.export.load(path).module() if path.endswith(".pt2") else torch.jit.load(path)
print(tuple(model(torch.zeros(3, 1)).shape))
"""


def test_list_get_alias_and_tag_versions(broker, worker_factory, tmp_path):
    worker = worker_factory(METASTREAM_ROLLOUT="0").start()
    def two_versions():  # a slower machine needs more tasks before its second version: publish until there are two
        return worker.metrics().get("metastream_versions_published_total", 0) >= 2

    publish_until(broker.bootstrap, SineFleet(seed=6), "sine", two_versions, drifted=False, tries=20)
    wait_for(two_versions, 120, "two published versions")
    registry = SyncModelRegistry(broker.bootstrap)
    listed = registry.versions("sine")
    assert [v.version for v in listed][:2] == [1, 2] and registry.models() == ["sine"]
    assert any("champion" in v.aliases for v in listed)
    got = registry.get("sine@champion")  # the worker goes on publishing: the alias may have moved since the listing
    champion = next(v for v in registry.versions("sine") if v.version == got["version"])
    assert champion.stage == "PRODUCTION" and champion.sha256 == got["sha256"]

    async def curate():
        async with ModelRegistry(broker.bootstrap) as reg:
            await reg.set_alias("sine", "production", 1)
            await reg.set_tag("sine", 1, "description", "the first version, kept for comparison")
            await reg.set_tag("sine", 1, "owner", "alice")
            await reg.set_tag("sine", 1, "owner", "")  # removed
            return await reg.version("sine@production"), await reg.get("sine/2")
    production, second = asyncio.run(curate())
    assert production.version == 1 and "production" in production.aliases
    assert production.tags == {"description": "the first version, kept for comparison"} and production.description
    assert second["version"] == 2

    moved = cli(broker.bootstrap, "models", "alias", "sine", "production", "2")
    assert moved.returncode == 0, moved.stderr[-2000:]
    shown = json.loads(cli(broker.bootstrap, "models", "get", "sine@production").stdout)
    assert shown["version"] == 2 and "production" in shown["aliases"]
    assert registry.version("sine", 1).aliases == []  # the alias moved

    with pytest.raises(RegistryError, match="no alias 'staging'"):
        registry.get("sine@staging")
    with pytest.raises(RegistryError, match="rollouts' own"):
        registry.set_alias("sine", "champion", 1)
    for fmt, name in (("export", "sine.pt2"), ("torchscript", "sine.pt")):
        exported = cli(broker.bootstrap, "models", "export", "sine@production", "--format", fmt, "--out", str(tmp_path / name))
        assert exported.returncode == 0, exported.stderr[-2000:]
        ran = subprocess.run([sys.executable, "-c", RUN_WITHOUT_THE_PROJECT, str(tmp_path / name)], capture_output=True,
                             text=True, cwd=tmp_path, timeout=120)
        assert ran.returncode == 0 and ran.stdout.strip() == "(3, 1)", ran.stderr[-2000:]
    saved = cli(broker.bootstrap, "models", "show", "sine", "--version", "2", "--save", str(tmp_path / "v2"))
    assert saved.returncode == 0 and (tmp_path / "v2" / "model.safetensors").is_file(), saved.stderr[-2000:]
    evaluated = cli(broker.bootstrap, "evaluate", str(tmp_path / "v2"), "--episodes", "5", "--json")
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["metric"] == "mse", evaluated.stderr[-2000:]

    missing = cli(broker.bootstrap, "models", "get", "sine/999")
    said = [line for line in missing.stderr.splitlines() if line.strip()]
    assert missing.returncode == 2 and len(said) == 1 and "sine v999 is not published" in said[0], missing.stderr
