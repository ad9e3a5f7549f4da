"""The gradient-descent inner loop as pure functions, so it can be ``vmap``-ed over tasks and
differentiated through with ``torch.func``."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad

Params = dict[str, torch.Tensor]


def make_loss(model: nn.Module, buffers: Params, loss: Callable) -> Callable:
    """``(params, x, y) -> scalar`` running ``model`` with the given parameters."""

    def fn(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(model, (params, buffers), (x,)), y)

    return fn


def sgd_steps(
    loss_fn: Callable, params: Params, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, first_order: bool
) -> Params:
    """``steps`` plain gradient steps on one task. Differentiable through the steps unless
    ``first_order``, which treats each inner gradient as a constant (first-order MAML)."""
    g_fn = grad(loss_fn)
    for _ in range(steps):
        g = g_fn(params, x, y)
        if first_order:
            g = {k: v.detach() for k, v in g.items()}
        params = {k: p - lr * g[k] for k, p in params.items()}
    return params
