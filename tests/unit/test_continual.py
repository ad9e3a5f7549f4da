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


def test_der_buffer_keeps_logits_with_items():
    buf = ReservoirBuffer(5, seed=0)
    buf.add(torch.rand(8, 784), torch.arange(8) % 10, torch.rand(8, 10))
    x, y, z = buf.sample_with_logits(3)
    assert x.shape == (3, 784) and z.shape == (3, 10)
    with pytest.raises(ValueError, match="logits"):
        buf.add(torch.rand(2, 784), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="no logits"):
        ReservoirBuffer(5).sample_with_logits(1)


def test_lwf_penalty_is_zero_until_the_model_moves_from_its_teacher():
    from learners.continual.distill import LwF

    torch.manual_seed(0)
    model = mlp(16)
    lwf = LwF(weight=1.0)
    x = torch.rand(16, 784)
    with torch.no_grad():  # the penalty's value is read, not trained on
        assert float(lwf.penalty(x, model(x))) == 0.0  # no teacher yet
        lwf.consolidate(model, classes=[0, 1])
        assert float(lwf.penalty(x, model(x))) == pytest.approx(0.0, abs=1e-6)
        assert float(lwf.penalty(x, model(x) * 3)) > 0


def test_compression_teaches_a_smaller_student():
    from learners.continual.distill import compress, parameter_count

    torch.manual_seed(0)
    tx, ty, vx, vy = load_mnist_split()
    teacher = mlp(100)
    opt = torch.optim.SGD(teacher.parameters(), lr=0.1)
    for _epoch in range(2):  # a teacher at ~0.90 (seeds 0-1), well clear of the 0.8 it must reach
        for i in range(0, 3000, 10):
            loss = torch.nn.functional.cross_entropy(teacher(tx[i : i + 10]), ty[i : i + 10])
            opt.zero_grad()
            loss.backward()
            opt.step()
    student = compress(teacher, mlp(16), tx[:3000], epochs=10)  # no labels: the teacher's answers only

    def acc(m):
        with torch.no_grad():
            return float((m(vx).argmax(-1) == vy).float().mean())

    assert parameter_count(student) < parameter_count(teacher) / 5
    assert acc(teacher) > 0.8 and acc(student) > acc(teacher) - 0.08


def test_progressive_net_freezes_earlier_columns():
    from learners.continual.progressive import ProgressiveNet

    net = ProgressiveNet(784, [16, 16], 10)
    net.add_column()
    first = [p.clone() for p in net.columns[0].parameters()]
    net.add_column()
    assert all(not p.requires_grad for p in net.columns[0].parameters())
    assert all(p.requires_grad for p in net.columns[1].parameters())
    loss = net(torch.rand(4, 784), task=1).sum()
    loss.backward()
    assert all(p.grad is None for p in net.columns[0].parameters())
    assert all(torch.equal(a, b) for a, b in zip(first, net.columns[0].parameters()))
    with pytest.raises(IndexError):
        net(torch.rand(1, 784), task=2)


def test_split_mnist_tasks_hold_two_digits_each():
    from learners.continual.mnist import split_tasks

    tasks = split_tasks()
    assert [t.classes for t in tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert all(set(t.train_y.unique().tolist()) == set(t.classes) and len(t.test_y) == 400 for t in tasks)
    assert sum(len(t.train_y) for t in tasks) == 8000


def _small_split():
    from learners.continual.mnist import split_tasks

    return [t._replace(train_x=t.train_x[:300], train_y=t.train_y[:300]) for t in split_tasks()[:3]]


def test_class_incremental_replay_beats_finetuning_and_task_il_is_easier():
    tasks = _small_split()
    finetune = run_method("finetune", tasks, "class-il")
    derpp = run_method("der++", tasks, "class-il", buffer=200)
    assert finetune.metrics.acc < 0.4  # only the last task's digits survive
    assert derpp.metrics.acc > finetune.metrics.acc + 0.2
    task_il = run_method("finetune", tasks, "task-il")
    assert task_il.metrics.acc > finetune.metrics.acc + 0.3
    progressive = run_method("progressive", tasks, "task-il")
    assert progressive.metrics.bwt == pytest.approx(0.0, abs=1e-9)  # frozen columns forget nothing
    with pytest.raises(ValueError, match="task identity"):
        run_method("progressive", tasks, "class-il")
    with pytest.raises(ValueError, match="unknown method"):
        run_method("gem", tasks, "class-il")


def test_tuned_hyperparameters_come_from_the_nearest_validated_buffer():
    from learners.continual.benchmark import tuned, validation_tasks
    from learners.continual.mnist import split_tasks

    assert tuned("split", 200, "der++")["der_alpha"] == 0.1
    assert tuned("split", 900, "er") == tuned("split", 1000, "er")
    assert tuned("split", 200, "lwf") == {}
    tasks = split_tasks()[:1]
    val = validation_tasks(tasks)[0]
    assert len(val.test_y) == int(0.2 * len(tasks[0].train_y))  # held out from training images only
    assert len(val.train_y) + len(val.test_y) == len(tasks[0].train_y)


def test_weight_aligning_equalises_new_and_old_class_norms():
    from learners.continual.align import weight_align

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 6)
    with torch.no_grad():
        head.weight[4:] *= 5  # the newest classes: larger weights, as after training on them alone
    gamma = weight_align(head, old=[0, 1, 2, 3], new=[4, 5])
    norms = head.weight.detach().norm(dim=1)
    assert gamma < 1
    assert float(norms[4:].mean()) == pytest.approx(float(norms[:4].mean()), rel=1e-5)
    assert weight_align(head, old=[], new=[0, 1]) == 1.0  # the first task has nothing to align to
    with pytest.raises(ValueError, match="overlap"):
        weight_align(head, old=[0, 1], new=[1, 2])


def test_weight_aligned_der_pp_runs_class_il_and_more_steps_per_batch_change_the_run():
    tasks = _small_split()
    plain = run_method("der++", tasks, "class-il", buffer=200)
    aligned = run_method("der++wa", tasks, "class-il", buffer=200)
    assert aligned.metrics.acc > 0.5
    assert not np.allclose(plain.R, aligned.R)  # aligning changed the later tasks' predictions
    assert np.allclose(plain.R[0], aligned.R[0])  # nothing to align after the first task
    again = run_method("der++", tasks, "class-il", buffer=200, iterations=2)
    assert again.buffer.seen == plain.buffer.seen  # each incoming item is offered to the buffer once
    assert not np.allclose(plain.R, again.R)


def test_fisher_is_the_mean_squared_gradient_under_sampled_targets_for_regression_too():
    from learners.backbones import MLP

    torch.manual_seed(0)
    model, x = MLP(), torch.linspace(-5, 5, 40)[:, None]
    fisher = EWC(model, kind="regression", fisher_samples=16, seed=3).fisher(x)
    gen = torch.Generator().manual_seed(3)  # the same draws, one input at a time
    idx = torch.randperm(len(x), generator=gen)[:16]
    with torch.no_grad():
        preds = model(x[idx])
    targets = preds + torch.randn(preds.shape, generator=gen)
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(16):
        model.zero_grad()
        (0.5 * ((model(x[idx[i : i + 1]]) - targets[i]) ** 2).sum()).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad**2 / 16
    for n in expected:
        assert torch.allclose(fisher[n], expected[n], atol=1e-6), n
    with pytest.raises(ValueError, match="kind"):
        EWC(model, kind="ranking")
