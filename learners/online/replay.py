"""A bounded replay buffer of tasks: points grouped by task id, a byte bound, and reservoir
eviction over tasks so every task seen has the same chance to stay (old tasks are not simply
forgotten when new ones arrive). Points within a task are capped, which keeps tasks balanced.

>>> import numpy as np
>>> buf = TaskReplayBuffer(max_bytes=10_000, max_points_per_task=20, seed=0)
>>> buf.add("t1", np.zeros((5, 1), "f4"), np.ones((5, 1), "f4"))
>>> buf.num_tasks, buf.num_points
(1, 5)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class _Task:
    x: np.ndarray  # [cap, feature_dim], filled up to n
    y: np.ndarray
    n: int = 0
    seen: int = 0  # points ever offered, for reservoir sampling within the task
    order: int = 0  # arrival order of the task


class TaskReplayBuffer:
    def __init__(self, max_bytes: int, max_points_per_task: int = 64, seed: int = 0) -> None:
        self.max_bytes = max_bytes
        self.max_points_per_task = max_points_per_task
        self._rng = np.random.default_rng(seed)
        self._tasks: dict[str, _Task] = {}
        self._tasks_seen = 0
        self.bytes = 0

    @property
    def num_tasks(self) -> int:
        return len(self._tasks)

    @property
    def num_tasks_seen(self) -> int:
        """Distinct tasks ever added (evicted ones included)."""
        return self._tasks_seen

    @property
    def num_points(self) -> int:
        return sum(t.n for t in self._tasks.values())

    def task_ids(self) -> list[str]:
        """Task ids, oldest first."""
        return sorted(self._tasks, key=lambda k: self._tasks[k].order)

    def add(self, task_id: str, x: np.ndarray, y: np.ndarray) -> None:
        """Add rows of one task (copied, so the buffer never aliases a message's memory)."""
        task = self._tasks.get(task_id)
        cap = self.max_points_per_task
        if task is None:
            self._tasks_seen += 1
            task = self._tasks[task_id] = _Task(np.empty((cap, x.shape[1]), "f4"), np.empty((cap, y.shape[1]), "f4"),
                                                order=self._tasks_seen)
            self.bytes += task.x.nbytes + task.y.nbytes
        k = min(cap - task.n, x.shape[0])
        if k > 0:
            task.x[task.n : task.n + k] = x[:k]
            task.y[task.n : task.n + k] = y[:k]
            task.n += k
            task.seen += k
        for i in range(k, x.shape[0]):  # reservoir within a full task
            task.seen += 1
            j = int(self._rng.integers(task.seen))
            if j < cap:
                task.x[j], task.y[j] = x[i], y[i]
        while self.bytes > self.max_bytes and len(self._tasks) > 1:
            self._evict(keep=task_id)

    def _evict(self, keep: str) -> None:
        """Drop a uniformly chosen task: over the stream this keeps a uniform sample of tasks."""
        others = [k for k in self._tasks if k != keep]
        victim = others[int(self._rng.integers(len(others)))]
        t = self._tasks.pop(victim)
        self.bytes -= t.x.nbytes + t.y.nbytes

    def evict_to(self, target_bytes: int) -> None:
        """Evict (uniformly, as always; the newest task stays) until the buffer holds at most
        ``target_bytes``; the bound stays, so it fills again as tasks arrive."""
        if self.bytes <= target_bytes or len(self._tasks) < 2:
            return
        newest = self.task_ids()[-1]
        others = [k for k in self._tasks if k != newest]
        # one shuffled pass (uniform without replacement): evicting one at a time rebuilt the list of
        # every task per victim, and halving a full 32 MiB buffer held a worker's event loop 70 s
        for i in self._rng.permutation(len(others)):
            if self.bytes <= target_bytes:
                break
            t = self._tasks.pop(others[i])
            self.bytes -= t.x.nbytes + t.y.nbytes

    def halve(self, floor: int) -> int:
        """Evict half of what the buffer holds and keep its bound there (not below ``floor``): what
        a worker short of memory does, so the memory is freed now and the buffer does not fill up
        again. Returns the new bound.

        >>> import numpy as np
        >>> buf = TaskReplayBuffer(max_bytes=8_000, max_points_per_task=4)
        >>> for i in range(300): buf.add(f"t{i}", np.zeros((4, 1), "f4"), np.zeros((4, 1), "f4"))
        >>> buf.bytes, buf.halve(1_500), buf.bytes, buf.halve(1_500), buf.halve(1_500)
        (8000, 4000, 4000, 2000, 1500)
        """
        self.max_bytes = max(int(floor), min(self.max_bytes, self.bytes) // 2)
        self.evict_to(self.max_bytes)
        return self.max_bytes

    def remove(self, task_id: str) -> None:
        """Take a task out (e.g. to hold it out as a probe); unknown ids are ignored."""
        t = self._tasks.pop(task_id, None)
        if t is not None:
            self.bytes -= t.x.nbytes + t.y.nbytes

    def has(self, task_id: str) -> bool:
        return task_id in self._tasks

    def count(self, task_id: str) -> int:
        return self._tasks[task_id].n

    def arrays(self, task_id: str) -> tuple[np.ndarray, np.ndarray]:
        t = self._tasks[task_id]
        return t.x[: t.n], t.y[: t.n]

    def tasks_with(self, min_points: int) -> list[str]:
        return [k for k in self.task_ids() if self._tasks[k].n >= min_points]

    def digest(self) -> str:
        """SHA-256 of what an update reads: task ids in order, their points, and the state of the
        random generator (an audit compares a rebuilt buffer with the one the update saw).

        >>> import numpy as np
        >>> a, b = TaskReplayBuffer(10_000), TaskReplayBuffer(10_000)
        >>> for buf in (a, b): buf.add("t", np.zeros((2, 1), "f4"), np.ones((2, 1), "f4"))
        >>> a.digest() == b.digest()
        True
        """
        import hashlib

        h = hashlib.sha256(repr((self.max_bytes, self.max_points_per_task, self._rng.bit_generator.state["state"])).encode())
        for tid in self.task_ids():
            t = self._tasks[tid]
            h.update(f"{tid}\0{t.n}\0{t.seen}\0".encode())
            h.update(t.x[: t.n].tobytes())
            h.update(t.y[: t.n].tobytes())
        return h.hexdigest()

    def snapshot(self) -> "TaskReplayBuffer":
        """An independent copy (a learner in another process reads a buffer nobody writes to); it is
        a whole buffer: points can be added to it like to the original.

        >>> import numpy as np
        >>> buf = TaskReplayBuffer(max_bytes=10_000, max_points_per_task=4)
        >>> buf.add("t", np.zeros((2, 1), "f4"), np.zeros((2, 1), "f4"))
        >>> copy = buf.snapshot()
        >>> copy.add("t", np.ones((2, 1), "f4"), np.ones((2, 1), "f4"))
        >>> copy.count("t"), buf.count("t")
        (4, 2)
        """
        clone = TaskReplayBuffer(self.max_bytes, self.max_points_per_task)
        clone._rng = np.random.default_rng(self._rng.bit_generator.state["state"]["state"] % 2**63)
        clone._tasks = {k: _Task(t.x.copy(), t.y.copy(), t.n, t.seen, t.order) for k, t in self._tasks.items()}
        clone._tasks_seen, clone.bytes = self._tasks_seen, self.bytes
        return clone

    def __getstate__(self) -> dict:
        """Pickled as a few stacked arrays rather than two small arrays per task: a worker's
        snapshot and every update job pickle the buffer, and 100,000 small objects take a second.

        >>> import pickle, numpy as np
        >>> buf = TaskReplayBuffer(max_bytes=10_000, max_points_per_task=4)
        >>> buf.add("a", np.zeros((2, 1), "f4"), np.ones((2, 1), "f4")); buf.add("b", np.ones((3, 1), "f4"), np.ones((3, 1), "f4"))
        >>> pickle.loads(pickle.dumps(buf)).digest() == buf.digest()
        True
        """
        state = {k: v for k, v in self.__dict__.items() if k != "_tasks"}
        tasks = list(self._tasks.values())
        try:
            stacked = (np.stack([t.x for t in tasks]), np.stack([t.y for t in tasks])) if tasks else None
        except ValueError:  # tasks of different widths: each task as it is
            stacked = None
        if stacked is None:
            state["_tasks"] = self._tasks
            return state
        state["_stacked"] = (list(self._tasks), *stacked, np.array([(t.n, t.seen, t.order) for t in tasks], "i8"))
        return state

    def __setstate__(self, state: dict) -> None:
        stacked = state.pop("_stacked", None)
        self.__dict__.update(state)
        if stacked is not None:
            ids, xs, ys, counts = stacked
            self._tasks = {tid: _Task(xs[i].copy(), ys[i].copy(), int(counts[i, 0]), int(counts[i, 1]), int(counts[i, 2]))
                           for i, tid in enumerate(ids)}
