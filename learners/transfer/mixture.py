"""A mixture of meta-models routed by fit (learner level; not yet in the workers): several
components of one config, each task served by the component that fits its own support set best
(adapt on one half of the support, score on the other, both ways), in the spirit of Jerfel et al.
(2019), who route by the task's likelihood under each component. Task *encodings* do not separate
the sine regimes (``bench/stability.py`` and issue 12's note), fit does: a drifted task is fitted
badly by a component that never saw its regime.

A regime that no component fits (its tasks' loss under the best component more than
``spawn_ratio`` times the loss the components have on their own tasks) spawns a component copied
from the best one; each update then trains every component only on the tasks routed to it, so an
old regime's component is not overwritten, and a regime that comes back is routed to it again.

>>> import torch
>>> from learners import MAML, MLP
>>> torch.manual_seed(0) and None
>>> mix = MetaMixture([MAML(MLP(), "regression", inner_lr=0.01)])
>>> sx = torch.randn(3, 10, 1); sy = torch.sin(sx)
>>> mix.route(sx, sy).tolist()
[0, 0, 0]
"""

from __future__ import annotations

import copy

import torch

from ..base import MetaLearner, task_score
from ..tasks.base import TaskBatch


class MetaMixture:
    def __init__(self, components: list[MetaLearner], spawn_ratio: float = 2.0, max_components: int = 4) -> None:
        self.components = list(components)
        self.spawn_ratio, self.max_components = spawn_ratio, max_components

    def support_loss(self, component: MetaLearner, support_x: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
        """Per task: adapt on one half of the support, score on the other, and the other way round."""
        half = support_x.shape[1] // 2
        losses = []
        for fit, held in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
            adapted = component.adapt_tasks(support_x[:, fit], support_y[:, fit])
            with torch.no_grad():
                out = component.predict_tasks(adapted, support_x[:, held])
            score = task_score(component.kind, out, support_y[:, held])
            losses.append(score if component.kind == "regression" else 1.0 - score)
        return torch.stack(losses).mean(0)

    def route(self, support_x: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
        """The component index for each task: the best fit to its own support."""
        losses = torch.stack([self.support_loss(c, support_x, support_y) for c in self.components])
        return losses.argmin(0)

    def query_losses(self, batch: TaskBatch) -> torch.Tensor:
        """``[components, tasks]``: each component's post-adaptation query loss (MSE or 1 - accuracy)."""
        out = []
        for c in self.components:
            adapted = c.adapt_tasks(batch.support_x, batch.support_y)
            with torch.no_grad():
                score = task_score(c.kind, c.predict_tasks(adapted, batch.query_x), batch.query_y)
            out.append(score if c.kind == "regression" else 1.0 - score)
        return torch.stack(out)

    def maybe_spawn(self, recent: TaskBatch, known: TaskBatch) -> bool:
        """Spawn a component copied from the best fit to ``recent`` when even that one fits them
        ``spawn_ratio`` times worse than the components fit ``known`` tasks (their own regimes)."""
        if len(self.components) >= self.max_components:
            return False
        new = self.query_losses(recent).min(0).values.mean()
        old = self.query_losses(known).min(0).values.mean()
        if new <= self.spawn_ratio * old:
            return False
        best = int(self.query_losses(recent).mean(1).argmin())
        self.components.append(copy.deepcopy(self.components[best]))
        return True

    def train_routed(self, learner, buffer, iterations: int, meta_batch: int, gen: torch.Generator) -> None:
        """One update: every buffered task goes to the component with the lowest query loss (the
        buffer holds the labels), and each component takes ``iterations`` meta-updates on its own
        tasks only. ``learner`` (an ``OnlineMetaLearner``) splits the buffer's tasks."""
        batch = learner.task_batch(buffer, buffer.task_ids())
        ids, routes = list(learner.last_batch_ids), self.query_losses(batch).argmin(0)
        for index, component in enumerate(self.components):
            mine = [ids[i] for i in torch.nonzero(routes == index).flatten().tolist()]
            if len(mine) < meta_batch:
                continue
            component.model.train()
            for _ in range(iterations):
                pick = [mine[i] for i in torch.randint(len(mine), (meta_batch,), generator=gen).tolist()]
                component.meta_update(learner.task_batch(buffer, pick))
            component.model.eval()

    def score(self, batch: TaskBatch) -> float:
        """Mean post-adaptation query score (MSE or accuracy) with each task routed by its support."""
        routes = self.route(batch.support_x, batch.support_y)
        scores = torch.empty(len(routes))
        for k, c in enumerate(self.components):
            idx = torch.nonzero(routes == k).flatten()
            if len(idx):
                adapted = c.adapt_tasks(batch.support_x[idx], batch.support_y[idx])
                with torch.no_grad():
                    scores[idx] = task_score(c.kind, c.predict_tasks(adapted, batch.query_x[idx]), batch.query_y[idx])
        return float(scores.mean())
