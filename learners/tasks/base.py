"""A task is a support set to adapt on and a query set to be judged on; a batch stacks tasks."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TaskBatch:
    """``T`` tasks of identical shape, stacked on a leading task axis.

    ``support_x``: ``[T, S, ...]``, ``support_y``: ``[T, S]`` (class ids) or ``[T, S, 1]`` (values),
    and likewise for the query set. Stacking is what lets the learners ``vmap`` over tasks.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    @property
    def num_tasks(self) -> int:
        return self.support_x.shape[0]

    def inputs(self) -> torch.Tensor:
        """Every task's support and query inputs as one batch of examples: ``[T * (S + Q), ...]``."""
        return torch.cat([self.support_x, self.query_x], 1).flatten(0, 1)

    def target_variance(self) -> torch.Tensor:
        """Per-task variance of the targets, support and query together (regression): ``[T]``."""
        return torch.cat([self.support_y, self.query_y], 1).flatten(1).var(1)

    def to(self, device: torch.device | str) -> "TaskBatch":
        return TaskBatch(*(t.to(device) for t in (self.support_x, self.support_y, self.query_x, self.query_y)))

    def task(self, i: int) -> "TaskBatch":
        """Task ``i`` as a batch of one."""
        return TaskBatch(*(t[i : i + 1] for t in (self.support_x, self.support_y, self.query_x, self.query_y)))

    def tasks(self, idx: torch.Tensor) -> "TaskBatch":
        """The tasks at ``idx`` (an index tensor), as a batch."""
        return TaskBatch(*(t[idx] for t in (self.support_x, self.support_y, self.query_x, self.query_y)))

    def __iter__(self):
        """Iterate single tasks as ``(support_x, support_y, query_x, query_y)`` without the task axis."""
        for i in range(self.num_tasks):
            yield self.support_x[i], self.support_y[i], self.query_x[i], self.query_y[i]
