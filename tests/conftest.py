import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    from tests.processes import interrupt_on_sigterm

    interrupt_on_sigterm()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A test that cannot run here says so in one line, with what to install (not a silent skip)."""
    import shutil

    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        terminalreporter.write_line("the status page's browser test did not run: no Chromium found; install Debian's "
                                    "'chromium' package (apt-get install chromium), as .ci/run does", yellow=True)


def pytest_unconfigure(config):
    """No broker, worker or update process outlives the run, however it ended."""
    from tests.processes import sweep

    left = sweep()
    if left:
        print(f"\nended {len(left)} processes the tests left running: {left}")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run on small tensors; one thread keeps them deterministic and leaves a core free."""
    torch.set_num_threads(1)
    yield


LONGEST_FIRST = ("test_rollout.py", "test_restart_state.py", "test_audit_rebuild.py", "test_scale_out.py", "test_new_models.py",
                 "test_mixture_worker.py", "test_demo.py", "test_forgetting.py")


def pytest_collection_modifyitems(session, config, items):
    """The longest tests first, then the other integration tests, then the rest: with one test
    process per core, a long test that starts last would hold the run's end."""
    def rank(item):
        name = item.path.name
        if name in LONGEST_FIRST:
            return 0, LONGEST_FIRST.index(name)
        return (1, 0) if "integration" in item.path.parts else (2, 0)

    items.sort(key=rank)


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` runs one test process per core this run may use (``taskset`` counts)."""
    return max(len(os.sched_getaffinity(0)), 1)


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory):
    env = dict(os.environ)
    env["METASTREAM_SNAPSHOT_DIR"] = str(tmp_path_factory.mktemp("snapshots"))  # never another run's snapshots
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["COLUMNS"] = "120"
    env["METASTREAM_WEB_PORT"] = "0"  # workers the CLI tests start serve no status page (its port may be taken)
    return env


@pytest.fixture(scope="session")
def cli(cli_env):
    """``cli(*args)`` runs a ``metastream`` command in this process with typer's runner (a
    subprocess spends seconds importing torch; ``test_every_command_has_help`` runs the real entry
    point); returns what a finished process would: ``returncode``, ``stdout``, ``stderr``."""
    import types

    from typer.testing import CliRunner

    from streams.cli import app

    def run(*args, check=True, timeout=300):
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            result = CliRunner().invoke(app, [str(a) for a in args], env=cli_env)
        finally:
            os.chdir(cwd)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            raise AssertionError(f"metastream {' '.join(map(str, args))} raised:\n"
                                 + "".join(traceback.format_exception(result.exception)) + result.stderr)
        proc = types.SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"metastream {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run
