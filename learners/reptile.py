"""Reptile (Nichol et al., 2018): move the initialisation towards the weights each task reaches.

All tasks of a meta-batch run their inner SGD at once under ``vmap``; the meta-"gradient" is the
initialisation minus the mean adapted weights, handed to the outer optimiser (SGD with
``meta_lr`` as Reptile's step size epsilon).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import vmap

from .base import task_score
from .maml import GradientLearner
from .tasks.base import TaskBatch


class Reptile(GradientLearner):
    name = "reptile"

    def __init__(self, model: nn.Module, kind: str, inner_lr: float = 0.01, inner_steps: int = 5,
                 meta_lr: float = 0.1, test_steps: int | None = None, chunk_size: int | None = None) -> None:
        super().__init__(model, kind, inner_lr, inner_steps, meta_lr, test_steps, chunk_size)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=meta_lr)  # the outer step interpolates toward the adapted weights
        self.optimizer_name = "sgd"

    def meta_update(self, batch: TaskBatch) -> dict[str, float]:
        # Reptile adapts on all of a task's data: support and query together.
        x = torch.cat([batch.support_x, batch.query_x], dim=1)
        y = torch.cat([batch.support_y, batch.query_y], dim=1)
        params = {k: v.detach() for k, v in self.params().items()}
        with torch.no_grad():
            adapted = vmap(lambda xx, yy: self._inner(params, xx, yy, self.inner_steps, True))(x, y)
            grads = {k: params[k] - adapted[k].mean(0) for k in params}
            # metrics: query predictions after adapting on the support set only
            outs = self.predict_tasks(self.adapt_tasks(batch.support_x, batch.support_y, self.inner_steps), batch.query_x)
        self._apply_grads(grads)
        scores = task_score(self.kind, outs, batch.query_y)
        metrics = {"loss": float(((outs - batch.query_y) ** 2).mean()) if self.kind == "regression"
                   else float(torch.nn.functional.cross_entropy(outs.flatten(0, 1), batch.query_y.flatten()))}
        if self.kind == "classification":
            metrics["accuracy"] = float(scores.mean())
        return metrics
