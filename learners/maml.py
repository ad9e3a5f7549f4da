"""MAML (Finn et al., 2017) and its first-order variant, batched over tasks with ``torch.func``.

The meta-gradient of the mean post-adaptation query loss is one ``grad`` over a ``vmap`` over
tasks of an inner loop that is itself written with ``grad``: no Python loop over tasks, and the
second-order terms come for free from composing the transforms. First-order MAML detaches each
inner gradient, so only the identity path through the inner updates remains.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .base import MetaLearner, task_loss, task_score
from .functional import Params, make_loss, sgd_steps
from .tasks.base import TaskBatch


class GradientLearner(MetaLearner):
    """Shared by MAML, first-order MAML and Reptile: adaptation is plain SGD from the meta-learned
    initialisation, run for all tasks at once under ``vmap``."""

    first_order = False

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        meta_lr: float = 1e-3,
        test_steps: int | None = None,
        chunk_size: int | None = None,
        optimizer: str = "adam",
    ) -> None:
        super().__init__(model, kind, meta_lr, optimizer)
        # tasks per vmap chunk in the meta-gradient (None: all at once); on a CPU, chunks of a
        # few conv tasks keep activations in cache and run faster than one huge batch
        self.chunk_size = chunk_size
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.test_steps = test_steps if test_steps is not None else inner_steps

    def params(self) -> Params:
        return {k: v for k, v in self.model.named_parameters()}

    def buffers(self) -> Params:
        return {k: v for k, v in self.model.named_buffers()}

    def _loss_fn(self):
        return make_loss(self.model, self.buffers(), partial(task_loss, self.kind))

    def _inner(self, params: Params, x: torch.Tensor, y: torch.Tensor, steps: int, first_order: bool) -> Params:
        return sgd_steps(self._loss_fn(), params, x, y, steps, self.inner_lr, first_order)

    def adapt_tasks(self, support_x, support_y, steps=None) -> Params:
        steps = self.test_steps if steps is None else steps
        params = {k: v.detach() for k, v in self.params().items()}
        run = lambda x, y: self._inner(params, x, y, steps, True)
        with torch.no_grad():
            return vmap(run)(support_x, support_y)

    def predict_tasks(self, adapted: Params, query_x: torch.Tensor) -> torch.Tensor:
        buffers = self.buffers()
        return vmap(lambda p, x: functional_call(self.model, (p, buffers), (x,)))(adapted, query_x)

    def predict_unadapted(self, query_x: torch.Tensor, ways: int) -> torch.Tensor:
        buffers = self.buffers()
        return vmap(lambda x: functional_call(self.model, (self.params(), buffers), (x,)))(query_x)

    def meta_update(self, batch: TaskBatch) -> dict[str, float]:
        """One step of the initialisation along the subclass's ``meta_gradient``."""
        grads, loss, outs = self.meta_gradient(batch)
        self._apply_grads(grads)
        metrics = {"loss": float(loss)}
        if self.kind == "classification":
            metrics["accuracy"] = float(task_score(self.kind, outs, batch.query_y).mean())
        return metrics

    def _apply_grads(self, grads: Params) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        for name, p in self.model.named_parameters():
            p.grad = grads[name].detach()
        self.optimizer.step()

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "inner_lr": self.inner_lr, "inner_steps": self.inner_steps, "test_steps": self.test_steps,
                "chunk_size": self.chunk_size}


class MAML(GradientLearner):
    """Second-order MAML: differentiates through the inner updates."""

    name = "maml"

    def meta_gradient(self, batch: TaskBatch) -> tuple[Params, torch.Tensor, torch.Tensor]:
        """Gradient of the mean query loss w.r.t. the initialisation, the loss and the per-task
        query outputs. Exposed so tests can check it against a plain autograd loop."""
        first_order = self.first_order
        steps = self.inner_steps
        loss_fn = self._loss_fn()

        def one_task(params, sx, sy, qx, qy):
            adapted = sgd_steps(loss_fn, params, sx, sy, steps, self.inner_lr, first_order)
            out = functional_call(self.model, (adapted, self.buffers()), (qx,))
            return task_loss(self.kind, out, qy), out

        def meta_loss(params):
            losses, outs = vmap(one_task, in_dims=(None, 0, 0, 0, 0), chunk_size=self.chunk_size)(
                params, batch.support_x, batch.support_y, batch.query_x, batch.query_y
            )
            return losses.mean(), outs

        params = {k: v.detach() for k, v in self.params().items()}
        grads, outs = grad(meta_loss, has_aux=True)(params)
        loss = torch.stack([task_loss(self.kind, o, y) for o, y in zip(outs, batch.query_y)]).mean()
        return grads, loss.detach(), outs.detach()


class FirstOrderMAML(MAML):
    """First-order MAML: the inner gradients are treated as constants."""

    name = "fomaml"
    first_order = True
