"""Architecture search mechanics on tiny budgets: specs build, train and keep the parameter budget;
DARTS' derived cell is not all skips."""

import json

import numpy as np
import pytest
import torch

from learners.backbones import build_backbone
from learners.cells import OPS, parameter_count
from learners.registry import build_learner, build_tasks, merge
from learners.search import Fidelity
from learners.search.darts import SuperNet, derive, proto_loss
from learners.search.nas import GENOME_SPACE, genome_spec, handpicked, search_architecture, with_backbone


def test_a_skip_heavy_supernet_still_derives_a_cell_that_is_not_all_skips():
    alphas = torch.zeros(6, len(OPS))
    alphas[:, OPS.index("skip")] = 5.0  # the collapse: skip dominates every edge
    alphas[:, OPS.index("sep3")] = 1.0
    edges = derive(alphas, nodes=3, max_skip=1)
    ops = [op for node in edges for _, op in node]
    assert ops.count("skip") <= 1 and "none" not in ops and len(ops) == 5
    pooled = torch.zeros(6, len(OPS))
    pooled[:, OPS.index("avgpool3")] = 5.0  # or into parameter-free pooling
    assert all(any(op in ("conv3", "conv5", "sep3", "dil3") for _, op in node) for node in derive(pooled, nodes=3))
    spec = {"name": "cell", "edges": edges, "channels": 8, "cells": 2, "image_size": 16}
    assert build_backbone(spec)(torch.rand(3, 1, 16, 16)).shape == (3, 8 * 4 * 4)


def test_darts_search_returns_a_spec_that_meta_trains():
    result = search_architecture("omniglot", "darts", budget_s=3, seed=0)
    spec = result.spec
    assert spec["name"] == "cell" and spec["found_by"] == "darts" and result.evaluations >= 1
    assert abs(result.parameters / result.handpicked_parameters - 1) < 0.1
    assert json.loads(json.dumps(spec)) == spec  # a JSON spec
    config = with_backbone("omniglot", spec)
    learner = build_learner(config)
    assert parameter_count(learner.model) == result.parameters
    # and it meta-trains: a few meta-updates on Omniglot episodes move its weights and give finite losses
    tasks = build_tasks(merge(config, ways=5, shots=1, queries=1), "train")
    before = [p.detach().clone() for p in learner.model.parameters()]
    gen = torch.Generator().manual_seed(0)
    losses = [learner.meta_update(tasks.sample(4, gen))["loss"] for _ in range(3)]
    assert all(np.isfinite(losses)) and any(not torch.equal(a, b) for a, b in zip(before, learner.model.parameters()))


@pytest.mark.parametrize("task", ["sine", "omniglot"])
def test_evolution_returns_a_genome_at_the_handpicked_parameter_count(task):
    result = search_architecture(task, "evolution", evaluations=2, fidelity=Fidelity(iterations=4, rungs=1, val_episodes=5))
    assert result.evaluations == 2 and result.genome is not None and result.best_error is not None
    assert abs(result.parameters / result.handpicked_parameters - 1) < 0.1
    assert build_learner(with_backbone(task, result.spec)).model is not None


def test_every_genome_fits_the_conv4_budget():
    target = parameter_count(build_backbone(handpicked("omniglot")))
    gen = __import__("numpy").random.default_rng(0)
    for _ in range(6):
        spec = genome_spec("omniglot", GENOME_SPACE.sample(gen), target)
        assert abs(parameter_count(build_backbone(spec)) / target - 1) < 0.1, spec


def test_the_supernet_loss_falls_on_one_episode():
    from learners.registry import build_tasks, default_config, merge

    torch.manual_seed(0)
    tasks = build_tasks(merge(default_config("omniglot", "protonet"), ways=5), "train")
    net = SuperNet(channels=8, cells=2, nodes=2)
    batch = tasks.sample(1, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = float(proto_loss(net, batch).detach())
    for _ in range(10):
        loss = proto_loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(proto_loss(net, batch).detach()) < first


def test_a_search_ends_in_a_final_rung_at_the_final_budget_and_keeps_report_alphabets_out_of_training():
    from learners.registry import build_tasks, merge
    from learners.search.nas import base_config

    base = merge(base_config("omniglot"), test_alphabets=["Korean"])
    result = search_architecture("omniglot", "evolution", evaluations=3, fidelity=Fidelity(iterations=2, rungs=1, val_episodes=5),
                                 base=base, finalists=2, final_s=1.0)
    finals = [h for h in result.history if h.get("rung") == "final"]
    assert result.evaluations == 3 and len(finals) == 2  # the two best short candidates trained again
    assert result.best_error == min(f["error"] for f in finals)  # the answer is the final rung's best
    assert {f["short_error"] for f in finals} <= {h["error"] for h in result.history if "rung" not in h}
    config = with_backbone("omniglot", result.spec, 0, base)
    assert "Korean" not in build_tasks(config, "train").charset.alphabets  # reported on, never trained on
    assert list(build_tasks(config, "test").charset.alphabets) == ["Korean"]
