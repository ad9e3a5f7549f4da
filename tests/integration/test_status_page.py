"""The worker's status page, loaded in a real browser (headless Chromium): what a person sees."""

import shutil
import subprocess
import tempfile

import pytest

from streams.simulation.fleet import SineFleet

from .conftest import publish_rounds, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str) -> str:
    """The page's DOM after Chromium ran it (the text a person would read)."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               f"--user-data-dir={profile}", "--dump-dom", url], capture_output=True, text=True, timeout=60)
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (.ci/run installs it)")
def test_the_status_page_shows_models_aliases_and_decisions(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="30").start()
    publish_rounds(broker.bootstrap, SineFleet(seed=2), "sine", rounds=3, drift_from=99)
    wait_for(lambda: worker.metrics().get("metastream_versions_published_total", 0) >= 1, 60, "a published version")
    url = f"http://127.0.0.1:{worker.web_port}/status"
    page = wait_for(lambda: (lambda dom: dom if "VersionPublished" in dom else None)(render(url)), 30, "the page to show a decision")
    assert "metastream worker status" in page
    assert "<td>sine</td>" in page  # the model's row
    assert "RolloutPromoted" in page and "first_version" in page  # the first version became champion, and why
    assert "Diagnoses in force" in page and "UpdateStarted" in page
