"""MAML written the way learn2learn does it, as a yardstick: for each task in a Python loop, clone
the module, take ``autograd.grad`` with ``create_graph``, substitute the updated parameters into the
clone, and back-propagate the query loss. Used only by the equality test and the speed benchmark."""

from __future__ import annotations

import copy

import torch
from torch import nn

from learners.base import task_loss
from learners.tasks.base import TaskBatch


def _substitute(module: nn.Module, new: dict[str, torch.Tensor]) -> None:
    """Replace each parameter of ``module`` by a (non-leaf) tensor, keeping the graph to the original."""
    for name, tensor in new.items():
        *path, leaf = name.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        owner._parameters[leaf] = tensor


def reference_meta_gradient(model: nn.Module, kind: str, batch: TaskBatch, inner_lr: float, inner_steps: int,
                            first_order: bool = False) -> dict[str, torch.Tensor]:
    """Gradient of the mean query loss w.r.t. ``model``'s parameters, one task at a time."""
    model.zero_grad(set_to_none=True)
    names = [n for n, _ in model.named_parameters()]
    for sx, sy, qx, qy in batch:
        learner = copy.deepcopy(model)  # "clone": shares nothing but we re-link parameters below
        params = dict(model.named_parameters())
        _substitute(learner, params)
        for _ in range(inner_steps):
            loss = task_loss(kind, learner(sx), sy)
            current = [dict(learner.named_parameters())[n] for n in names]
            grads = torch.autograd.grad(loss, current, create_graph=not first_order)
            _substitute(learner, {n: p - inner_lr * g for n, p, g in zip(names, current, grads)})
        (task_loss(kind, learner(qx), qy) / batch.num_tasks).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}
