"""ANIL (Raghu et al., 2020, "almost no inner loop"): MAML whose inner loop adapts only the final
linear layer. The body runs once per task and the inner steps touch one small matrix, so a CPU
gives it many times the meta-iterations of MAML in the same minutes; the meta-gradient still flows
through the head's adaptation into the body (second order by default: it is cheap here).

Batched over tasks with ``torch.func`` like :mod:`learners.maml`: ``vmap`` over tasks of an inner
loop written with ``grad``.

>>> import torch
>>> from learners.backbones import MLP
>>> from learners.tasks import SineTasks
>>> _ = torch.manual_seed(0)
>>> anil = ANIL(MLP(), "regression", inner_lr=0.1, inner_steps=2)
>>> batch = SineTasks(shots=5, queries=5).sample(4, torch.Generator().manual_seed(0))
>>> sorted(anil.meta_update(batch))
['loss']
>>> anil.predict_tasks(anil.adapt_tasks(batch.support_x, batch.support_y), batch.query_x).shape
torch.Size([4, 5, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .base import task_loss
from .errors import ConfigError
from .functional import Params, sgd_steps
from .maml import GradientLearner
from .tasks.base import TaskBatch


@dataclass(frozen=True)
class HeadSplit:
    """Where a backbone's body ends and its final linear layer (the head) begins: parameter-name
    prefixes in the full model, and the body as a module of its own."""

    body: nn.Module
    body_prefix: str
    head_prefix: str | None  # None: no head of its own (an embedding net; Proto-MAML builds one)

    def body_params(self, params: Params) -> Params:
        return {k[len(self.body_prefix):]: v for k, v in params.items()
                if k.startswith(self.body_prefix) and not (self.head_prefix and k.startswith(self.head_prefix))}

    def head_params(self, params: Params) -> Params:
        if self.head_prefix is None:
            return {}
        return {k[len(self.head_prefix):]: v for k, v in params.items() if k.startswith(self.head_prefix)}


def split_head(model: nn.Module) -> HeadSplit:
    """A Conv-4 or searched image backbone (``features`` then ``head``) or an MLP (a ``Sequential``
    ending in ``Linear``)."""
    if isinstance(model, nn.Sequential) and isinstance(model[-1], nn.Linear):
        return HeadSplit(nn.Sequential(*list(model)[:-1]), "", f"{len(model) - 1}.")
    if isinstance(getattr(model, "features", None), nn.Module) and hasattr(model, "head"):
        return HeadSplit(model.features, "features.", "head." if model.head is not None else None)
    raise ConfigError(f"{type(model).__name__} has no separable final linear layer: ANIL and Proto-MAML need "
                      "a Conv-4, a searched image backbone or an MLP")


def linear(features: torch.Tensor, head: Params) -> torch.Tensor:
    return F.linear(features, head["weight"], head["bias"])


class ANIL(GradientLearner):
    """MAML with a head-only inner loop."""

    name = "anil"

    def __init__(self, model: nn.Module, kind: str, inner_lr: float = 0.1, inner_steps: int = 5, meta_lr: float = 1e-3,
                 test_steps: int | None = None, chunk_size: int | None = None, optimizer: str = "adam",
                 first_order: bool = False) -> None:
        super().__init__(model, kind, inner_lr, inner_steps, meta_lr, test_steps, chunk_size, optimizer)
        self.split = split_head(model)
        self.first_order = first_order
        self._check_head()

    def _check_head(self) -> None:
        if self.split.head_prefix is None:
            raise ConfigError("ANIL adapts the backbone's final linear layer: give the backbone out_features")

    # --- the pieces, as pure functions of the parameters ---------------------------------------
    def _features(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        buffers = self.split.body_params(self.buffers())
        return functional_call(self.split.body, (self.split.body_params(params), buffers), (x,))

    def _initial_head(self, params: Params, support_f: torch.Tensor, support_y: torch.Tensor, ways: int) -> Params:
        """The head the inner loop starts from: the meta-learned one (Proto-MAML overrides)."""
        return self.split.head_params(params)

    def _adapt_head(self, params: Params, sx: torch.Tensor, sy: torch.Tensor, steps: int, ways: int,
                    first_order: bool) -> tuple[Params, torch.Tensor]:
        fs = self._features(params, sx)
        head = self._initial_head(params, fs, sy, ways)
        loss = lambda h, f, y: task_loss(self.kind, linear(f, h), y)  # noqa: E731
        return sgd_steps(loss, head, fs, sy, steps, self.inner_lr, first_order), fs

    @staticmethod
    def _ways(support_y: torch.Tensor) -> int:
        return int(support_y.max()) + 1 if support_y.dtype == torch.long else 0

    # --- the MetaLearner interface ---------------------------------------------------------------
    def adapt_tasks(self, support_x, support_y, steps=None) -> Params:
        steps = self.test_steps if steps is None else steps
        params = {k: v.detach() for k, v in self.params().items()}
        ways = self._ways(support_y) if self.kind == "classification" else 0
        with torch.no_grad():
            # torch.func.grad runs under no_grad too: the head's steps are computed, the graph is not kept
            heads = vmap(lambda x, y: self._adapt_head(params, x, y, steps, ways, True)[0])(support_x, support_y)
        return {"head": heads, "body": params}

    def predict_tasks(self, adapted: Params, query_x: torch.Tensor) -> torch.Tensor:
        body = adapted["body"]
        return vmap(lambda h, x: linear(self._features(body, x), h))(adapted["head"], query_x)

    def predict_unadapted(self, query_x: torch.Tensor, ways: int) -> torch.Tensor:
        params = {k: v.detach() for k, v in self.params().items()}
        head = self.split.head_params(params)
        if not head:  # no meta-learned head: every class equally likely
            return torch.zeros(*query_x.shape[:2], ways, device=query_x.device)
        return vmap(lambda x: linear(self._features(params, x), head))(query_x)

    def meta_gradient(self, batch: TaskBatch) -> tuple[Params, torch.Tensor, torch.Tensor]:
        """Gradient of the mean post-adaptation query loss w.r.t. body and head, the loss and the
        per-task query outputs."""
        steps, first_order = self.inner_steps, self.first_order
        ways = self._ways(batch.support_y) if self.kind == "classification" else 0

        def one_task(params, sx, sy, qx, qy):
            head, _ = self._adapt_head(params, sx, sy, steps, ways, first_order)
            out = linear(self._features(params, qx), head)
            return task_loss(self.kind, out, qy), out

        def meta_loss(params):
            losses, outs = vmap(one_task, in_dims=(None, 0, 0, 0, 0), chunk_size=self.chunk_size)(
                params, batch.support_x, batch.support_y, batch.query_x, batch.query_y)
            return losses.mean(), (losses.mean().detach(), outs)

        params = {k: v.detach() for k, v in self.params().items()}
        grads, (loss, outs) = grad(meta_loss, has_aux=True)(params)
        return grads, loss, outs.detach()

    def hyperparameters(self) -> dict:
        return {**super().hyperparameters(), "first_order": self.first_order}
