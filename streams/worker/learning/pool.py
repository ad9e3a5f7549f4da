"""The update processes: spawned processes (``process.update_executor``) in a pool whose size the
memory remedy can change. Two by default: a drift update starts at once in the second while a
pre-empted routine update winds down in the first. Each holds torch and the buffer snapshot of its
last job (about 375 MiB each for the sine preset, beside the worker's 490: measured in the
self-healing bench), far more than a replay buffer gives back when it is halved, so under memory
pressure with the buffers at their floor the worker gives one back, and takes it again once there
is room for it."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from streams.worker.learning.process import UpdateJob, UpdateResult, run_update, update_executor, warm_up


class UpdatePool:
    """``size`` update processes now, ``configured`` when memory allows."""

    def __init__(self, processes: int, abort: Any = None) -> None:
        self.configured = self.size = processes
        self._abort = abort
        self._executor = update_executor(processes, abort)

    def warm(self) -> list[Future]:
        """Start every process now (importing torch there takes seconds); their futures."""
        return [self._executor.submit(warm_up, 1.0) for _ in range(self.size)]

    async def run(self, job: UpdateJob) -> UpdateResult:
        return await asyncio.get_running_loop().run_in_executor(self._executor, run_update, job)

    def resize(self, processes: int) -> bool:
        """Run the jobs submitted from now on in a pool of ``processes`` (at least one); the old
        pool's running and queued jobs finish there, and its processes exit when they are done.
        False when the size does not change."""
        processes = max(1, processes)
        if processes == self.size:
            return False
        old, self._executor = self._executor, update_executor(processes, self._abort)
        old.shutdown(wait=False)
        self.size = processes
        return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
