import numpy as np
import pytest
import torch

from learners.continual import EWC, ReservoirBuffer, accuracy_matrix_metrics
from learners.continual.mnist import load_mnist_split, permuted_tasks
from learners.continual.runner import mlp, run_method


def test_mnist_split_is_stratified_and_disjoint():
    tx, ty, vx, vy = load_mnist_split()
    assert tx.shape == (8000, 784) and vx.shape == (2000, 784)
    assert torch.bincount(vy).tolist() == [200] * 10
    assert 0.0 <= float(tx.min()) and float(tx.max()) <= 1.0


def test_metrics_follow_lopez_paz_and_ranzato():
    R = np.array([[0.9, 0.2, 0.1], [0.8, 0.9, 0.1], [0.6, 0.85, 0.95]])
    m = accuracy_matrix_metrics(R, np.array([0.1, 0.1, 0.1]))
    assert m.acc == pytest.approx((0.6 + 0.85 + 0.95) / 3)
    assert m.bwt == pytest.approx(((0.6 - 0.9) + (0.85 - 0.9)) / 2)
    assert m.fwt == pytest.approx(((0.2 - 0.1) + (0.1 - 0.1)) / 2)
    assert m.forgetting == pytest.approx([0.3, 0.05])
    with pytest.raises(ValueError):
        accuracy_matrix_metrics(np.zeros((2, 3)))


def test_reservoir_keeps_a_uniform_sample_within_its_bounds():
    buf = ReservoirBuffer(100, seed=0)
    x = torch.arange(10000, dtype=torch.float32)[:, None]
    buf.add(x, torch.zeros(10000, dtype=torch.long))
    assert len(buf) == 100 and buf.seen == 10000
    kept = buf.x[:, 0]
    assert 3000 < float(kept.mean()) < 7000  # not just the first or the last items
    small = ReservoirBuffer(1000, max_bytes=40 * (4 * 784 + 8))
    small.add(torch.zeros(50, 784), torch.zeros(50, dtype=torch.long))
    assert small.capacity == 40 and len(small) == 40


def test_class_balanced_reservoir_keeps_rare_classes():
    buf = ReservoirBuffer(20, class_balanced=True, seed=0)
    y = torch.cat([torch.zeros(500, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    buf.add(torch.zeros(510, 3), y)
    assert int((buf.y[: len(buf)] == 1).sum()) == 10


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    torch.manual_seed(0)
    model = mlp(16)
    ewc = EWC(model, lam=10.0, fisher_samples=32)
    ewc.consolidate(torch.rand(64, 784))
    assert float(ewc.penalty().detach()) == 0.0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    assert float(ewc.penalty().detach()) > 0.0


def test_replay_forgets_less_than_finetuning():
    tasks = [(t[0][:300], t[1][:300], t[2][:500], t[3][:500]) for t in permuted_tasks(n_tasks=3, per_task=300)]
    finetune = run_method("finetune", tasks)
    replay = run_method("er", tasks, buffer=300)
    assert finetune.R.shape == (3, 3)
    assert replay.metrics.acc > finetune.metrics.acc + 0.05  # old tasks keep more of their accuracy
