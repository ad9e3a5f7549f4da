import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run on small tensors; one thread keeps them deterministic and leaves a core free."""
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["COLUMNS"] = "120"
    env["METASTREAM_WEB_PORT"] = "0"  # workers the CLI tests start serve no status page (its port may be taken)
    return env


@pytest.fixture(scope="session")
def cli(cli_env):
    import subprocess

    def run(*args, check=True, timeout=300):
        proc = subprocess.run([sys.executable, "-m", "streams.cli", *map(str, args)], capture_output=True, text=True,
                              env=cli_env, cwd=ROOT, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"metastream {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run
