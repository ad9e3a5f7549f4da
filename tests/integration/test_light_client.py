"""An agent that only publishes and follows the registry runs without torch: it publishes through
a started ExperiencePublisher on the broker, lists the versions a subscriber sees, and the CLI's
help and registry listing start with torch blocked."""

import asyncio
import subprocess
import sys

from .conftest import ROOT

from streams.kafka.topics import read_records

BLOCK = """
import sys
sys.modules["torch"] = None  # any 'import torch' now fails
"""

PUBLISH = BLOCK + """
import asyncio
import numpy as np
from streams.client import ExperiencePublisher, ModelSubscriber

async def main(bootstrap):
    async with ExperiencePublisher(bootstrap, agent_id="light-agent") as pub:
        ids = await pub.publish("sine", np.zeros((5, 1)), np.ones((5, 1)), ["t1"] * 5)
        await pub.flush()
    async with ModelSubscriber(bootstrap) as sub:  # follows the registry; loading a version would need torch
        await sub.poll(200)
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
    print(len(ids))

asyncio.run(main(sys.argv[1]))
"""

CLI = BLOCK + """
from streams.cli import app
app(sys.argv[1:])
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_an_agent_publishes_and_follows_the_registry_with_torch_blocked(broker):
    proc = _run(PUBLISH, broker.bootstrap)
    assert proc.returncode == 0 and proc.stdout.strip() == "5", proc.stderr[-3000:]
    batches = asyncio.run(read_records(broker.bootstrap, "experiences", "ExperienceBatch"))
    assert len(batches) == 1 and batches[0][1]["agent_id"] == "light-agent"


def test_the_cli_help_and_registry_listing_need_no_torch(broker):
    help_ = _run(CLI, "--help")
    assert help_.returncode == 0 and "metastream" in help_.stdout, help_.stderr[-3000:]
    listing = _run(CLI, "models", "ls", "--kafka", broker.bootstrap)
    assert listing.returncode == 0, listing.stderr[-3000:]
