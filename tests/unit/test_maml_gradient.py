"""The torch.func MAML meta-gradient equals a plain autograd loop's (learn2learn style)."""

import pytest
import torch

from learners import MAML, FirstOrderMAML, MLP, SineTasks
from learners.backbones import Conv4
from tests.maml_reference import reference_meta_gradient
from learners.tasks import TaskBatch


def _sine_batch():
    return SineTasks(shots=10, queries=10).sample(5, torch.Generator().manual_seed(3))


def _image_batch():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 5, 1, 28, 28, generator=g)
    q = torch.rand(3, 10, 1, 28, 28, generator=g)
    y = torch.arange(5).repeat(3, 1)
    return TaskBatch(x, y, q, torch.arange(5).repeat_interleave(2).repeat(3, 1))


@pytest.mark.parametrize("cls", [MAML, FirstOrderMAML])
@pytest.mark.parametrize("steps", [1, 2])
def test_sine_meta_gradient_matches_loop(cls, steps):
    torch.manual_seed(0)
    learner = cls(MLP().double(), "regression", inner_lr=0.01, inner_steps=steps)
    batch = _sine_batch()
    batch = TaskBatch(*(t.double() for t in (batch.support_x, batch.support_y, batch.query_x, batch.query_y)))
    fast, _, _ = learner.meta_gradient(batch)
    slow = reference_meta_gradient(learner.model, "regression", batch, 0.01, steps, first_order=cls.first_order)
    for name in slow:
        assert torch.allclose(fast[name], slow[name], atol=1e-5, rtol=0), name


@pytest.mark.parametrize("cls", [MAML, FirstOrderMAML])
def test_conv4_meta_gradient_matches_loop(cls):
    """With per-task BatchNorm statistics the vmapped and the looped gradients agree too."""
    torch.manual_seed(0)
    learner = cls(Conv4(hidden=8, out_features=5), "classification", inner_lr=0.4, inner_steps=1)
    batch = _image_batch()
    fast, _, _ = learner.meta_gradient(batch)
    slow = reference_meta_gradient(learner.model, "classification", batch, 0.4, 1, first_order=cls.first_order)
    for name in slow:
        assert torch.allclose(fast[name], slow[name], atol=1e-5, rtol=1e-4), name


def test_second_order_differs_from_first_order():
    """The test above would pass vacuously if both paths ignored second-order terms."""
    torch.manual_seed(0)
    model = MLP().double()
    batch = _sine_batch()
    batch = TaskBatch(*(t.double() for t in (batch.support_x, batch.support_y, batch.query_x, batch.query_y)))
    so = reference_meta_gradient(model, "regression", batch, 0.01, 1, first_order=False)
    fo = reference_meta_gradient(model, "regression", batch, 0.01, 1, first_order=True)
    assert max((so[k] - fo[k]).abs().max() for k in so) > 1e-6
