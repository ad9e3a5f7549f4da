"""A task as a fixed-length vector, read off the current meta-model from the task's support set.

Metric learners (ProtoNet, Matching nets): the mean and the spread of the support embeddings,
what the task's inputs look like to the model (an alphabet's style, a rotation). Gradient learners
(MAML and kin): the gradient of the support loss at the meta-initialisation, in the manner of
Task2Vec's Fisher embedding but keeping the sign (which way the task pulls the weights: for a sine
that is its amplitude and phase), through a fixed seeded random projection to ``dim`` numbers.
Every encoding has unit length, so the dot product is the cosine similarity.

>>> import torch
>>> from learners import MAML, MLP, SineTasks
>>> torch.manual_seed(0) and None
>>> learner = MAML(MLP(), "regression", inner_lr=0.01)
>>> batch = SineTasks().sample(3, torch.Generator().manual_seed(0))
>>> codes = encode_tasks(learner, batch.support_x, batch.support_y, dim=16)
>>> codes.shape, round(float((codes ** 2).sum(1)[0]), 4)
((3, 16), 1.0)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from ..base import MetaLearner

DIM = 64


def _unit(v: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(v, dim=-1).detach().cpu().numpy().astype(np.float32)


def _projection(inputs: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(inputs, dim, generator=gen) / dim ** 0.5


@torch.no_grad()
def _embedding_code(learner: MetaLearner, support_x: torch.Tensor) -> torch.Tensor:
    learner.model.eval()
    z = learner.model(support_x.flatten(0, 1)).view(*support_x.shape[:2], -1)
    learner.model.train()
    z = torch.nn.functional.normalize(z, dim=-1)
    return torch.cat([z.mean(1), z.std(1, correction=0)], -1)


def _gradient_code(learner: MetaLearner, support_x: torch.Tensor, support_y: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    params = {k: v.detach() for k, v in learner.model.named_parameters()}
    buffers = {k: v.detach() for k, v in learner.model.named_buffers()}

    def loss(p, x, y):
        out = functional_call(learner.model, (p, buffers), (x,))
        if learner.kind == "regression":
            return torch.nn.functional.mse_loss(out, y)
        return torch.nn.functional.cross_entropy(out, y)

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, support_x, support_y)
    flat = torch.cat([g.flatten(1) for g in grads.values()], 1)
    return flat @ _projection(flat.shape[1], dim, seed)


def encode_inputs(support_x: torch.Tensor) -> np.ndarray:
    """``[T, 2 * features]`` unit vectors: each task's per-feature mean and spread of its support
    inputs, with no model at all (what the mixture routes classification by). A regime that moves
    the inputs themselves (digits turned a quarter) shows here even when a model trained on one
    regime maps both to embeddings alike.

    >>> x = torch.zeros(2, 5, 3); x[1, :, 0] = 1.0
    >>> codes = encode_inputs(x); codes.shape, float(codes[0] @ codes[1]) < 1
    ((2, 6), True)
    """
    flat = support_x.flatten(2).float()
    return _unit(torch.cat([flat.mean(1), flat.std(1, correction=0)], -1) + 1e-6)


def encode_tasks(learner: MetaLearner, support_x: torch.Tensor, support_y: torch.Tensor, dim: int = DIM,
                 seed: int = 0) -> np.ndarray:
    """``[T, D]`` unit vectors for ``T`` tasks' support sets (``[T, S, ...]``)."""
    if hasattr(learner, "embed"):
        return _unit(_embedding_code(learner, support_x))
    return _unit(_gradient_code(learner, support_x, support_y, dim, seed))
