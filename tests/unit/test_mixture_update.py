"""The worker's update job on a mixture of meta-models (``{"preset": "sine", "mixture": true}``),
run as the update process runs it: an update of a new era spawns a component once the newest tasks
are of a new regime, the weights carry both, a learner built from the config loads them, each
component is the better one on its own regime, and the same job gives the same bytes (what
``audit rebuild`` relies on); when the old regime comes back in a later era, the update judges it
era 0's and routes it to component 0, spawning nothing."""

import numpy as np
import torch
from safetensors.torch import load

from learners.online import EraScore, GuardPlan, OnlineMetaLearner, ProbeSet, TaskReplayBuffer, UpdatePlan
from learners.registry import build_learner
from streams.simulation.fleet import SineFleet
from streams.catalog.presets import sine_model
from streams.worker.learning.process import Outcome, UpdateJob, run_update


def _tasks(fleet: SineFleet, drifted: bool, n: int):
    fleet.drift(drifted)
    xs, ys = zip(*[fleet.sample_task()[1:] for _ in range(n)])
    x, y = torch.tensor(np.stack(xs)), torch.tensor(np.stack(ys))
    return x[:, :10], y[:, :10], x[:, 10:], y[:, 10:]


def test_an_update_in_a_new_era_spawns_a_component_that_serves_the_new_regime():
    config = {**sine_model(), "mixture": True}
    learner = OnlineMetaLearner(config, seed=0)
    fleet, buffer, probes = SineFleet(seed=4), TaskReplayBuffer(2**26, 40), ProbeSet(per_era=64)  # as a worker keeps
    fleet.drift(False)
    while buffer.num_tasks < 200:
        tid, x, y = fleet.sample_task()
        if not probes.offer(0, x, y, task_id=tid):
            buffer.add(tid, x, y)
    for _ in range(4):  # the champion when the drift comes
        learner.promote(learner.propose(buffer, 150, 16))
    old = buffer.task_ids()
    # an update of a new era whose newest tasks are still of the old regime (the alarm came before
    # the buffer held the new one's) spawns nothing and leaves the era open for the next update
    early = GuardPlan(probes, {}, 100.0, 0.0, 0.0, old, current_era=1)
    look = run_update(UpdateJob(6, config, learner.weights_bytes(), buffer, UpdatePlan(10, 16, 16, 64, 0.5), early))
    assert look.proposal.mixture == {"components": 1, "spawned": False, "merged": 0}  # undecided: no verdict figures
    assert "checked_era" not in load(look.proposal.weights)  # one component: a plain model's weights
    fleet.drift(True)
    for _ in range(48):
        tid, x, y = fleet.sample_task()
        if not probes.offer(1, x, y, task_id=tid):  # era 1's probes: the new regime's
            buffer.add(tid, x, y)
    guard = GuardPlan(probes, {}, 100.0, 0.0, 0.0, old, current_era=1)
    job = UpdateJob(7, config, learner.weights_bytes(), buffer, UpdatePlan(150, 16, 16, 64, 0.5), guard)
    result = run_update(job)
    assert result.outcome is Outcome.PROPOSED
    figures = result.proposal.mixture
    assert {k: figures[k] for k in ("components", "spawned", "merged", "recognised", "component", "like_era")} == {
        "components": 2, "spawned": True, "merged": 0, "recognised": False, "component": 1, "like_era": 0}
    assert figures["fit_ratio"] > 1.5  # the new regime under era 0's component, over era 0's own tasks
    assert run_update(job).proposal.weights == result.proposal.weights  # the same job, the same bytes

    model = build_learner(config)  # one component, as a subscriber or an audit builds it
    model.model.load_state_dict(load(result.proposal.weights))
    assert len(model.components) == 2 and int(model.model.checked_era) == 1
    probe = SineFleet(seed=123)
    for drifted, own in ((False, 0), (True, 1)):  # paired: both components on the same 80 tasks
        sx, sy, qx, qy = _tasks(probe, drifted, 80)
        per = [float(((c.predict_tasks(c.adapt_tasks(sx, sy), qx) - qy) ** 2).mean()) for c in model.components]
        assert per[own] < per[1 - own], (drifted, per)

    # the next update of the same era looks for no other component
    learner.load_weights(result.proposal.weights)
    again = run_update(UpdateJob(8, config, learner.weights_bytes(), buffer, UpdatePlan(20, 16, 16, 64, 0.5), guard))
    assert again.proposal.mixture["components"] == 2 and not again.proposal.mixture["spawned"]

    # the old regime comes back in era 2: judged era 0's regime, routed to component 0, nothing spawns
    fleet.drift(False)
    for _ in range(48):
        buffer.add(*fleet.sample_task())
    back = GuardPlan(probes, {}, 100.0, 0.0, 0.0, buffer.task_ids(), current_era=2)
    home = run_update(UpdateJob(9, config, learner.weights_bytes(), buffer, UpdatePlan(20, 16, 16, 64, 0.5), back)).proposal
    assert {k: home.mixture[k] for k in ("components", "spawned", "recognised", "component", "like_era")} == {
        "components": 2, "spawned": False, "recognised": True, "component": 0, "like_era": 0}, home.mixture
    assert home.mixture["fit_ratio"] <= 1.5
    assert int(load(home.weights)["checked_era"]) == 2  # decided: the era's later updates judge nothing


def test_a_one_component_mixture_publishes_the_bytes_a_plain_model_would():
    """A stationary stream (a new era whose tasks are still of the old regime included): the
    mixture's update trains, guards and saves as the plain model's does, byte for byte, and each
    loads the other's weights."""
    plain, mixture = sine_model(), {**sine_model(), "mixture": True}
    fleet, buffer, probes = SineFleet(seed=5), TaskReplayBuffer(2**26, 40), ProbeSet(per_era=64)
    fleet.drift(False)
    while buffer.num_tasks < 160:
        tid, x, y = fleet.sample_task()
        if not probes.offer(0 if buffer.num_tasks < 80 else 1, x, y, task_id=tid):
            buffer.add(tid, x, y)
    weights = OnlineMetaLearner(plain, seed=0).weights_bytes()
    assert OnlineMetaLearner(mixture, seed=0).weights_bytes() == weights
    old = buffer.task_ids()[:60]
    for era, guard in ((0, None), (1, GuardPlan(probes, {0: EraScore.same(0.0)}, 3.0, 1.0, 100.0, old, current_era=1))):
        out = [run_update(UpdateJob(era, cfg, weights, buffer, UpdatePlan(30, 16, 16, 64, 0.5), guard)).proposal
               for cfg in (plain, mixture)]
        assert out[0].weights == out[1].weights, f"era {era}"
        assert out[1].mixture["components"] == 1 and not out[1].mixture["spawned"]
        weights = out[1].weights
    both = build_learner(mixture), build_learner(plain)
    for model in both:
        model.model.load_state_dict(load(weights))
    x = torch.linspace(-5, 5, 9)[:, None]
    assert torch.equal(both[0].model(x), both[1].model(x))
