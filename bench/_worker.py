"""Worker processes the benchmarks start: how they end."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_worker(proc: subprocess.Popen | None, grace_s: float = 15.0) -> None:
    """SIGTERM the worker's process group, SIGKILL it if it has not ended within ``grace_s``."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
