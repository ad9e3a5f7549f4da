"""Task encodings on real data, and the incremental clustering on two known regimes."""

import json
import numpy as np
import pytest
import torch

from learners.registry import build_learner, default_config
from learners.tasks import load_omniglot_background
from learners.tasks.episodes import Episodes
from learners.tasks.sine import SineTasks
from learners.transfer import OnlineTaskClusters, cosine_matrix, encode_tasks, precision_at_k
from learners.transfer.clustering import calibrated_threshold


def test_omniglot_episodes_of_one_alphabet_find_each_other():
    torch.manual_seed(0)
    learner = build_learner(default_config("omniglot", "protonet"))
    charset = load_omniglot_background()
    names = sorted({a.split("@")[0] for a in charset.alphabets})[:4]
    gen = torch.Generator().manual_seed(0)
    xs, labels = [], []
    for name in names:
        xs.append(Episodes(charset.subset_alphabets([name]), 5, 1, 1, True, None).sample(8, gen).support_x)
        labels += [name] * 8
    x = torch.cat(xs)
    codes = encode_tasks(learner, x, torch.zeros(x.shape[:2], dtype=torch.long))
    assert codes.shape[0] == 32 and np.allclose(np.linalg.norm(codes, axis=1), 1, atol=1e-5)
    assert precision_at_k(codes, labels, k=5) > 2 * (1 / 4)  # even an untrained net sees an alphabet's style


def test_sine_gradient_code_follows_the_curve_not_the_points():
    torch.manual_seed(0)
    learner = build_learner(default_config("sine", "maml"))
    gen = torch.Generator().manual_seed(1)
    x = SineTasks().sample_x(3, 10, gen)
    amp, phase = torch.tensor([3.0, 3.0, -3.0]), torch.tensor([1.0, 1.0, 1.0])
    y = SineTasks.curve(x, amp, phase)
    sim = cosine_matrix(encode_tasks(learner, x, y))
    assert sim[0, 1] > 0.2 > -0.5 > sim[0, 2]  # at initialisation: the same curve at other points alike; its negative opposite


def test_clusters_keep_two_regimes_apart_with_stable_ids():
    gen = np.random.default_rng(0)
    a, b = np.eye(8)[0], np.eye(8)[1]
    regime_a = a + 0.2 * gen.normal(size=(50, 8))
    clusters = OnlineTaskClusters(calibrated_threshold(regime_a))
    stream = [(a + 0.2 * gen.normal(size=8), 0) for _ in range(40)] + [(b + 0.2 * gen.normal(size=8), 1) for _ in range(40)]
    order = gen.permutation(len(stream))
    got = {}
    for i in order:
        code, regime = stream[i]
        got.setdefault(regime, []).append(clusters.learn_one(code))
    home_a, home_b = (max(set(v), key=v.count) for v in (got[0], got[1]))
    assert home_a != home_b
    assert got[0].count(home_a) >= 36 and got[1].count(home_b) >= 30


def test_adabn_and_coral_move_the_source_statistics_to_the_target():
    from learners.transfer.adaptation import DigitNet, adabn_statistics, coral_transform

    torch.manual_seed(0)
    target = torch.randn(500, 6) * 3 + 5
    net = adabn_statistics(DigitNet(6, 16, 8, 3), target)
    first = net.body[1]
    with torch.no_grad():
        pre = net.body[0](target)
    assert torch.allclose(first.running_mean, pre.mean(0), atol=1e-4)
    source = torch.randn(400, 4) @ torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    goal = torch.randn(400, 4) @ torch.tensor([[1.0, 0.5, 0, 0], [0, 1, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 2]]) + 3
    moved = coral_transform(source, goal)
    cov = lambda z: torch.cov(z.T)  # noqa: E731
    assert torch.allclose(moved.mean(0), goal.mean(0), atol=1e-4)
    assert (cov(moved) - cov(goal)).abs().max() < 0.5 < (cov(source) - cov(goal)).abs().max()


def test_every_method_adapts_a_real_digit_classifier_and_the_choice_uses_only_the_labels():
    from learners.transfer.adaptation import ADAPT, METHODS, Domains, accuracy, choose_method, mmd, train_source
    from learners.transfer.digit_domains import inverted, load_uci_digits, split_by_class

    x, y = load_uci_digits()
    train, test = split_by_class(y, 100, 0)
    model = train_source(x[train], y[train], epochs=10)
    assert accuracy(model, x[test], y[test]) > 0.9
    shifted = inverted(x[test])
    before = accuracy(model, shifted, y[test])
    labelled, rest = split_by_class(y[test], 5, 1)
    d = Domains(model, x[train], y[train], shifted[rest])
    after = {m: accuracy(ADAPT[m](d, shifted[labelled], y[test][labelled], 0), shifted[rest], y[test][rest]) for m in METHODS}
    assert before < 0.35 and max(after.values()) > before + 0.3, (before, after)
    assert accuracy(model, x[test], y[test]) > 0.9  # the source model is never changed
    chosen, scores = choose_method(d, shifted[labelled], y[test][labelled])
    assert chosen in METHODS and set(scores) == set(METHODS)
    assert mmd(x[test], x[train]) < mmd(shifted, x[train])


def test_a_mixture_spawns_for_a_regime_no_component_fits_and_routes_each_task_to_its_own():
    """Seed 0 throughout. Measured over 10 seeds of fleet, learner and torch (seeds 0-9, two runs):
    where the mixture spawned for the drifted regime only (6 of 10 seeds), old tasks routed home
    0.625-0.812 (threshold 0.6), drifted tasks 0.797-0.984 (0.7), mixture / one model on drifted
    tasks 0.52-0.76 (0.8). At the default ``spawn_ratio`` 1.5, 4 of the 10 seeds also spawned for
    their own regime: two batches of 32 sine tasks differ in mean loss by up to 2.2 times (the
    drifted regime: 3.3-7.3 times), so the spawn check is noisy; seed 0 is not one of those."""
    from learners.online import OnlineMetaLearner, TaskReplayBuffer
    from learners.transfer.mixture import MetaMixture
    from streams.simulation.fleet import SineFleet
    from streams.catalog.presets import sine_model

    torch.manual_seed(0)
    learner = OnlineMetaLearner(sine_model(), seed=0)
    fleet, buffers = SineFleet(seed=3), {False: TaskReplayBuffer(2**26, 40), True: TaskReplayBuffer(2**26, 40)}
    for drifted, buf in buffers.items():
        for _ in range(120):
            buf.add(*fleet.sample_task(drifted))

    def batch(drifted, n=16):
        buf = buffers[drifted]
        ids = buf.task_ids()
        return learner.task_batch(buf, [ids[i] for i in torch.randint(len(ids), (n,)).tolist()])

    def train(component, drifted, iterations=300):
        component.model.train()
        for _ in range(iterations):
            component.meta_update(batch(drifted))
        component.model.eval()

    train(learner.champion, False, 1200)  # as the worker's sine model is before the demo's drift
    mix = MetaMixture(learner.champion)
    assert not mix.maybe_spawn(batch(False, 32), batch(False, 32))  # its own regime: no new component
    assert mix.maybe_spawn(batch(True, 32), batch(False, 32), fit=lambda child: train(child, True)) and len(mix.components) == 2
    old, new = batch(False, 64), batch(True, 64)
    # routing by fit on 5 + 5 support points is noisy for one task, but well above chance (1/2)
    assert (mix.route(old.support_x, old.support_y) == 0).float().mean() > 0.6
    assert (mix.route(new.support_x, new.support_y) == 1).float().mean() > 0.7
    assert mix.score(new) < 0.8 * learner.score(learner.champion, new)  # seed 0: 0.72 of it


def test_a_mixture_version_carries_every_component_and_loads_into_a_model_built_from_its_config():
    from safetensors.torch import load, save

    from learners.registry import build_learner
    from learners.transfer.mixture import MetaMixture
    from streams.catalog.presets import sine_model

    config = {**sine_model(), "mixture": {"max_components": 3}}
    mix = build_learner(config)
    assert isinstance(mix, MetaMixture) and mix.max_components == 3
    mix.model.components.append(__import__("copy").deepcopy(mix.model.components[0]))
    with torch.no_grad():
        for p in mix.model.components[1].parameters():
            p.add_(0.5)
    data = save({k: v.contiguous() for k, v in mix.model.state_dict().items()})
    fresh = build_learner(config)  # one component, as a subscriber or an audit builds it
    fresh.model.load_state_dict(load(data))
    assert len(fresh.components) == 2 and fresh.components[1].model is fresh.model.components[1]
    x = torch.linspace(-5, 5, 20)[:, None]
    assert torch.equal(fresh.model(x), mix.model(x))
    sx, sy = torch.rand(4, 10, 1) * 10 - 5, torch.rand(4, 10, 1)
    assert torch.equal(fresh.predict_tasks(fresh.adapt_tasks(sx, sy), sx), mix.predict_tasks(mix.adapt_tasks(sx, sy), sx))


def test_components_that_fit_each_other_merge_and_distinct_ones_stay():
    import copy

    from learners import MAML, MLP
    from learners.tasks.base import TaskBatch
    from learners.transfer.mixture import MetaMixture

    torch.manual_seed(0)
    mix = MetaMixture(MAML(MLP(), "regression", inner_lr=0.01))
    mix.model.components.append(copy.deepcopy(mix.model.components[0]))
    x = torch.rand(8, 20, 1) * 10 - 5
    batch = TaskBatch(x[:, :10], torch.sin(x[:, :10]), x[:, 10:], torch.sin(x[:, 10:]))
    assert mix.merge_converged(batch) == 1 and len(mix.components) == 1  # an exact copy fits the same tasks
    far = copy.deepcopy(mix.model.components[0])
    with torch.no_grad():
        far[-1].bias.add_(10.0)  # predicts 10 more everywhere: fits none of component 0's tasks
    mix.model.components.append(far)
    assert mix.merge_converged(batch) == 0 and len(mix.components) == 2


def test_classification_routes_by_where_the_support_inputs_lie():
    from learners import MLP, ProtoNet
    from learners.tasks.base import TaskBatch
    from learners.transfer.mixture import MetaMixture

    torch.manual_seed(0)
    mix = MetaMixture(ProtoNet(MLP(inputs=4, outputs=8), "classification"))
    mix.model.components.append(__import__("copy").deepcopy(mix.model.components[0]))

    def tasks(shift: float) -> TaskBatch:
        x = torch.randn(6, 10, 4) + shift
        y = torch.arange(5).repeat(2)[None].expand(6, -1)
        return TaskBatch(x[:, :5], y[:, :5], x[:, 5:], y[:, 5:])

    mix.track_inputs(0, tasks(0.0))
    mix.track_inputs(1, tasks(3.0))
    assert mix.route(tasks(0.0).support_x, None).tolist() == [0] * 6
    assert mix.route(tasks(3.0).support_x, None).tolist() == [1] * 6


def test_mixture_options_say_what_is_wrong():
    from learners.errors import ConfigError
    from learners.transfer.mixture_options import mixture_options
    from streams.catalog.model_configs import parse_models

    assert mixture_options(None) is None and mixture_options(True)["spawn_ratio"] == 1.5
    for bad in ({"spawn_ratio": 1.0}, {"max_components": 0}, {"merge_tolerance": 2}, {"min_tasks": 1}, "yes", {"k": 2}):
        with pytest.raises(ConfigError, match="mixture"):
            mixture_options(bad)
    assert parse_models('{"s": {"preset": "sine", "mixture": true}}')["s"]["mixture"] is True
    with pytest.raises(ConfigError, match="model 's': mixture"):
        parse_models('{"s": {"preset": "sine", "mixture": {"max_components": 99}}}')


def test_presets_are_served_as_mixtures_unless_a_config_says_otherwise():
    from learners.registry import build_learner
    from learners.transfer.mixture import MetaMixture
    from streams.catalog.model_configs import parse_models
    from streams.catalog.new_model_policy import NewModelPolicy
    from streams.settings import Settings

    models = parse_models('{"a": "sine", "b": "digits", "c": {"preset": "tabular", "features": 3}, '
                          '"d": {"preset": "sine", "mixture": false}, "e": {"preset": "digits", "mixture": {"max_components": 2}}}')
    assert [models[m]["mixture"] for m in "abcde"] == [True, True, True, False, {"max_components": 2}]
    assert isinstance(build_learner(models["a"]), MetaMixture) and not isinstance(build_learner(models["d"]), MetaMixture)
    assert Settings.of().catalog.models["sine"]["mixture"] is True  # what a worker serves unset
    policy = NewModelPolicy.parse('[{"pattern": "reviewer-*", "model": {"preset": "tabular", "features": 3}}]')
    assert policy.config_for("reviewer-1")["mixture"] is True  # new agent types too
    written = {**models["d"], "mixture": None}  # a full config is served as written
    assert "mixture" not in parse_models(json.dumps({"f": {k: v for k, v in written.items() if k != "mixture"}}))["f"]


def test_input_statistics_put_rotated_digit_tasks_in_another_cluster():
    from learners.transfer import encode_inputs
    from learners.transfer.clustering import calibrated_centre_threshold
    from streams.simulation.fleet import DigitFleet

    calib = DigitFleet(seed=3, per_class=2, split="test")
    threshold = calibrated_centre_threshold(encode_inputs(torch.from_numpy(np.stack([calib.episode(False)[0] for _ in range(100)]))))
    fleet, kinds = DigitFleet(seed=7, per_class=2, split="test"), np.random.default_rng(0).permutation([False] * 80 + [True] * 80)
    clusters = OnlineTaskClusters(threshold)
    assigned = np.array([clusters.learn_one(encode_inputs(torch.from_numpy(fleet.episode(bool(k))[0])[None])[0]) for k in kinds])
    home = np.bincount(assigned[~kinds]).argmax()
    assert (assigned[kinds] != home).mean() > 0.95 and (assigned[~kinds] == home).mean() > 0.7


def _distinct_mixture(count: int, **options):
    """A sine MAML mixture whose components predict sin(x) + 10 k (k = 0, 1, ...): each fits only
    its own offset's tasks."""
    import copy

    from learners import MAML, MLP
    from learners.transfer.mixture import MetaMixture

    torch.manual_seed(0)
    mix = MetaMixture(MAML(MLP(), "regression", inner_lr=0.01), **options)
    for k in range(1, count):
        far = copy.deepcopy(mix.model.components[0])
        with torch.no_grad():
            far[-1].bias.add_(10.0 * k)
        mix.model.components.append(far)
    mix.model.resize(count, 0)
    return mix


def _offset_tasks(offset: float, n: int = 8):
    from learners.tasks.base import TaskBatch

    x = torch.rand(n, 20, 1) * 10 - 5
    y = 0.1 * torch.sin(x) + offset
    return TaskBatch(x[:, :10], y[:, :10], x[:, 10:], y[:, 10:])


def test_a_regime_that_comes_back_is_routed_to_its_component_and_a_new_one_spawns():
    from learners.transfer.regimes import Verdict

    mix = _distinct_mixture(2)
    eras = {0: _offset_tasks(0.0), 1: _offset_tasks(10.0)}
    back = mix.judge(_offset_tasks(0.0), eras, left=1)  # era 1's drift led back to era 0's regime
    assert (back.verdict, back.component, back.era) == (Verdict.KNOWN, 0, 0) and back.ratio < 1.5
    assert mix.judge(_offset_tasks(10.0), eras, left=1).verdict is Verdict.UNDECIDED  # still the regime it left
    new = mix.answer(_offset_tasks(-30.0), eras)  # fits neither: a component spawns for it
    assert (new.verdict, new.component, len(mix.components)) == (Verdict.NEW, 2, 3) and new.retired == -1


def test_at_its_budget_a_mixture_merges_the_closest_pair_or_retires_the_least_used():
    import copy

    from learners.transfer.regimes import Retirement, Verdict

    mix = _distinct_mixture(2, max_components=3)
    mix.model.components.append(copy.deepcopy(mix.model.components[1]))  # a twin of component 1
    mix.model.resize(3, 0)
    eras = {0: _offset_tasks(0.0), 1: _offset_tasks(10.0)}
    made = mix.answer(_offset_tasks(-30.0), eras)
    assert made.verdict is Verdict.NEW and (made.retired, made.retirement, made.given_up) == (2, Retirement.MERGED, ())
    assert len(mix.components) == 3  # within the budget: the twin went, the new regime's came

    mix = _distinct_mixture(3, max_components=3)
    mix.model.uses = torch.tensor([5.0, 0.5, 3.0])  # component 1 trained on fewest tasks lately
    eras = {0: _offset_tasks(0.0), 1: _offset_tasks(10.0), 2: _offset_tasks(20.0)}
    made = mix.answer(_offset_tasks(-30.0), eras)
    assert (made.retired, made.retirement, made.given_up) == (1, Retirement.LEAST_USED, (1,))
    assert len(mix.components) == 3 and mix.judge(_offset_tasks(20.0), {2: eras[2]}).component == 1  # renumbered


def test_routing_from_the_support_takes_one_adaptation_step_per_component():
    """A consumer of a two-component version paid 3.2 times a plain model's adaptation when routing
    adapted every component in full on both halves of the support; one step on the whole support
    routes as well (and keeps the old regime's tasks home more often: ``mixture.py``)."""
    mix = _distinct_mixture(4, route_candidates=2)
    tasks = _offset_tasks(20.0, n=6)
    steps = []
    for c in mix.components:
        adapt = c.adapt_tasks

        def counted(sx, sy, n=None, adapt=adapt):
            steps.append(n)
            return adapt(sx, sy, n)

        c.adapt_tasks = counted
    assert mix.route(tasks.support_x, tasks.support_y).tolist() == [2] * 6
    assert steps == [1] * 4  # one step for each of four components
    mix.adapt_tasks(tasks.support_x, tasks.support_y)
    assert steps[4:] == [1] * 4 + [None]  # then the full adaptation by the one component routed to