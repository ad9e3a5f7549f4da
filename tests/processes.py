"""Every process a test run started ends with it: a sweep of this process's descendants (and their
process groups, since brokers and workers start sessions of their own) when the run ends, and
SIGTERM turned into an interrupt so that a run stopped by ``timeout`` or a CI runner tears its
fixtures down and sweeps too."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def descendants(root: int) -> list[int]:
    """Pids of every living descendant of ``root`` (read from ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid = int(stat.parent.name)
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sweep(root: int | None = None) -> list[int]:
    """SIGKILL every descendant of ``root`` (default: this process) and the process groups they
    lead; returns the pids it found."""
    root = os.getpid() if root is None else root
    own_group = os.getpgid(0)
    pids = descendants(root)
    for pid in pids:
        try:
            group = os.getpgid(pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return pids


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread: pytest then ends the run as after
    Ctrl-C, tearing down fixtures (their processes with them) before the sweep."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the run at once
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
