"""The worker's memory against its budget: the ``memory_pressure`` rule's signal. What counts is
the resident memory of the worker and of the update processes it started (what the kernel would
kill it for), against ``METASTREAM_MEMORY_MB``, else the container's limit (cgroup), else the
machine's memory. A full replay buffer is healthy (it evicts at its bound); a worker near its
budget is not, whatever holds the memory.

Read from ``/proc`` and ``/sys/fs/cgroup`` (Linux, where workers run) rather than with psutil: a
few lines, and one dependency less; elsewhere the resident memory is the process's peak.

>>> used_bytes() > 0 and budget_bytes(0.0) > 0 and budget_bytes(512.0) == 512 * 2**20
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import multiprocessing
import os
import resource
from pathlib import Path

CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))  # v2, v1
NO_LIMIT = 2**60  # cgroup v1 says "no limit" with a number near 2**63


def resident_bytes(pid: int | None = None) -> int:
    """Resident memory of ``pid`` (this process by default); 0 for a process that is gone."""
    try:
        pages = int(Path(f"/proc/{pid or 'self'}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        if pid is not None:
            return 0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the peak (KiB on Linux, bytes on macOS)
        return peak if peak > 2**32 else peak * 1024


def used_bytes() -> int:
    """Resident memory of the worker and of the processes it started (its update processes)."""
    return resident_bytes() + sum(resident_bytes(child.pid) for child in multiprocessing.active_children())


def largest_child_bytes() -> int:
    """Resident memory of the largest process this one started (an update process): what one more would take."""
    return max((resident_bytes(child.pid) for child in multiprocessing.active_children()), default=0)


def container_limit(paths: tuple[Path, ...] = CGROUP_LIMITS) -> int | None:
    """The container's memory limit (cgroup v2 or v1, or the files in ``paths``), ``None`` when there is none."""
    for path in paths:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < NO_LIMIT:
            return int(text)
    return None


def budget_bytes(memory_mb: float, limit_file: str = "") -> int:
    """``memory_mb`` MiB when set (> 0), else the limit in ``limit_file`` (read now: a limit changed
    in place counts at once), else the container's, else the machine's memory.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".max") as f:
    ...     _ = f.write("1073741824"); f.flush()
    ...     budget_bytes(0.0, f.name) == 2**30, budget_bytes(256.0, f.name) == 256 * 2**20
    (True, True)
    """
    if memory_mb > 0:
        return int(memory_mb * 2**20)
    limit = container_limit((Path(limit_file),) if limit_file else CGROUP_LIMITS)
    return limit or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def worker_budget(diagnosis) -> int:
    """The budget the worker's diagnosis settings give (``METASTREAM_MEMORY_MB``, its limit file, ...)."""
    return budget_bytes(diagnosis.memory_mb, diagnosis.memory_limit_file)


def release_freed() -> None:
    """Hand memory freed by an eviction back to the system: collect cycles, then ask glibc's
    allocator to return free pages (without it an evicted buffer's memory stays resident)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:  # not glibc: the allocator keeps its pages
        pass
