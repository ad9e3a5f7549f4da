"""ANIL and Proto-MAML: the torch.func meta-gradient equals a plain autograd loop over tasks, the
body really stays fixed in the inner loop, and the prototype head is the ProtoNet classifier."""

import pytest
import torch
import torch.nn.functional as F

from learners import MLP, SineTasks
from learners.anil import ANIL, split_head
from learners.backbones import Conv4
from learners.base import task_loss
from learners.errors import ConfigError
from learners.protomaml import ProtoMAML
from learners.registry import build_learner, default_config
from learners.tasks import TaskBatch


def _image_batch(ways: int = 5):
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, ways, 1, 28, 28, generator=g)
    q = torch.rand(3, 2 * ways, 1, 28, 28, generator=g)
    return TaskBatch(x, torch.arange(ways).repeat(3, 1), q, torch.arange(ways).repeat_interleave(2).repeat(3, 1))


def _reference(learner, batch: TaskBatch, proto: bool) -> dict[str, torch.Tensor]:
    """One task at a time with autograd.grad(create_graph=True), only the head stepped."""
    model, split = learner.model, learner.split
    model.zero_grad(set_to_none=True)
    for sx, sy, qx, qy in batch:
        fs, fq = split.body(sx), split.body(qx)
        if proto:
            ways = int(sy.max()) + 1
            c = torch.stack([fs[sy == k].mean(0) for k in range(ways)])
            w, b = 2 * c, -(c ** 2).sum(-1)
        else:
            head = model.head if hasattr(model, "head") else model[-1]
            w, b = head.weight, head.bias
        for _ in range(learner.inner_steps):
            gw, gb = torch.autograd.grad(task_loss(learner.kind, F.linear(fs, w, b), sy), (w, b), create_graph=True)
            w, b = w - learner.inner_lr * gw, b - learner.inner_lr * gb
        (task_loss(learner.kind, F.linear(fq, w, b), qy) / batch.num_tasks).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def test_anil_sine_meta_gradient_matches_loop():
    torch.manual_seed(0)
    learner = ANIL(MLP().double(), "regression", inner_lr=0.1, inner_steps=3)
    b = SineTasks(shots=10, queries=10).sample(5, torch.Generator().manual_seed(3))
    batch = TaskBatch(*(t.double() for t in (b.support_x, b.support_y, b.query_x, b.query_y)))
    fast, _, _ = learner.meta_gradient(batch)
    slow = _reference(learner, batch, proto=False)
    assert set(fast) == set(slow)
    for name in slow:
        assert torch.allclose(fast[name], slow[name], atol=1e-6, rtol=1e-5), name


@pytest.mark.parametrize("proto", [False, True])
def test_conv4_meta_gradient_matches_loop(proto):
    torch.manual_seed(0)
    if proto:
        learner = ProtoMAML(Conv4(hidden=8), "classification", inner_lr=0.1, inner_steps=2)
    else:
        learner = ANIL(Conv4(hidden=8, out_features=5), "classification", inner_lr=0.1, inner_steps=2)
    batch = _image_batch()
    fast, _, _ = learner.meta_gradient(batch)
    slow = _reference(learner, batch, proto)
    for name in slow:
        assert torch.allclose(fast[name], slow[name], atol=1e-5, rtol=1e-4), name
    assert any(fast[n].abs().max() > 0 for n in fast if n.startswith("features.0.")), "the body gets a meta-gradient"


def test_inner_loop_adapts_only_the_head():
    torch.manual_seed(0)
    learner = ANIL(Conv4(hidden=8, out_features=5), "classification", inner_lr=0.5, inner_steps=3)
    batch = _image_batch()
    adapted = learner.adapt_tasks(batch.support_x, batch.support_y)
    head = learner.model.head
    assert not torch.equal(adapted["head"]["weight"][0], head.weight)  # the head moved
    for name, p in learner.model.features.named_parameters():  # the body did not
        assert torch.equal(adapted["body"][f"features.{name}"], p.detach())


def test_prototype_head_without_steps_is_the_protonet_classifier():
    torch.manual_seed(0)
    learner = ProtoMAML(Conv4(hidden=8), "classification", inner_steps=0, test_steps=0)
    learner.model.eval()
    batch = _image_batch()
    logits = learner.predict_tasks(learner.adapt_tasks(batch.support_x, batch.support_y), batch.query_x)
    with torch.no_grad():
        for t in range(batch.num_tasks):
            protos = learner.model(batch.support_x[t])  # one shot: the prototypes are the embeddings
            dist = torch.cdist(learner.model(batch.query_x[t]), protos) ** 2
            assert torch.equal(logits[t].argmax(-1), (-dist).argmax(-1))


def test_configs_build_and_refuse_what_cannot_work():
    for algo in ("anil", "protomaml"):
        learner = build_learner(default_config("omniglot", algo))
        assert learner.name == algo and learner.inner_steps == 5
    assert build_learner(default_config("sine", "anil")).kind == "regression"
    with pytest.raises(ConfigError, match="sine is regression"):
        default_config("sine", "protomaml")
    with pytest.raises(ConfigError, match="out_features"):
        ANIL(Conv4(hidden=8), "classification")
    with pytest.raises(ConfigError, match="no out_features"):
        ProtoMAML(Conv4(hidden=8, out_features=5), "classification")
    with pytest.raises(ConfigError, match="separable"):
        split_head(torch.nn.Conv2d(1, 1, 3))
