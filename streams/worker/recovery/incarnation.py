"""Whether the worker before this one stopped cleanly: each running worker keeps a mark in its data
folder (``<snapshot dir>/<app id>/running/<host>-<pid>.json``, its start and the last second it was
alive) and removes it on a clean shutdown. A mark left by a process that is gone is a crash: the
restarted worker says so (``WorkerRestarted``, cause ``crash``) with how long the gap was, as a
database's lock file tells it whether to run recovery.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> Incarnation(folder, pid=2**22 + 7).begin() is None    # a process id no one has; no mark: a first start
True
>>> second = Incarnation(folder, pid=2**22 + 8)
>>> second.begin().pid                                     # the first never ended: its mark is left
4194311
>>> second.end()                                           # a clean shutdown
>>> Incarnation(folder, pid=2**22 + 9).begin() is None     # nothing left behind
True
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

STALE_S = 30.0  # a mark from another host counts as left behind once it has not been refreshed for this long


@dataclass(frozen=True)
class Predecessor:
    """A worker that ended without a clean shutdown, from the mark it left."""

    host: str
    pid: int
    started_ms: int
    alive_ms: int  # the last time it refreshed its mark: it stopped between this and the next refresh

    def gap_s(self, now_ms: float | None = None) -> float:
        now = time.time() * 1000 if now_ms is None else now_ms
        return max(now - self.alive_ms, 0.0) / 1000


def _alive(pid: int) -> bool:
    if pid == os.getpid():  # a restarted container gets its predecessor's pid: that one is gone
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class Incarnation:
    def __init__(self, directory: str | Path, pid: int | None = None, host: str | None = None) -> None:
        self.directory = Path(directory) / "running"
        self.pid = os.getpid() if pid is None else pid
        self.host = host or socket.gethostname()
        self.path = self.directory / f"{self.host}-{self.pid}.json"
        self.started_ms = int(time.time() * 1000)

    def begin(self) -> Predecessor | None:
        """Claim the newest mark a crashed worker left (removing every such mark), and leave this one's."""
        left = []
        for path in self.directory.glob("*.json") if self.directory.exists() else ():
            mark = self._read(path)
            if mark is None or (mark.host == self.host and _alive(mark.pid)):
                continue
            if mark.host != self.host and time.time() * 1000 - mark.alive_ms < STALE_S * 1000:
                continue  # another machine's worker that is (probably) still running
            left.append(mark)
            path.unlink(missing_ok=True)
        self.beat()
        return max(left, key=lambda m: m.alive_ms) if left else None

    def beat(self) -> None:
        """Refresh the mark: the time this worker was last known alive."""
        self.directory.mkdir(parents=True, exist_ok=True)
        body = {"host": self.host, "pid": self.pid, "started_ms": self.started_ms, "alive_ms": int(time.time() * 1000)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.path)

    def end(self) -> None:
        """A clean shutdown: the next worker here starts without recovery to report."""
        self.path.unlink(missing_ok=True)

    @staticmethod
    def _read(path: Path) -> Predecessor | None:
        try:
            body = json.loads(path.read_text())
            return Predecessor(str(body["host"]), int(body["pid"]), int(body["started_ms"]), int(body["alive_ms"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a torn or foreign file: not a mark
