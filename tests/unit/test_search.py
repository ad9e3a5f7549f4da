"""The mechanics of the hyperparameter search on tiny budgets (quality is bench/hpo.py's job)."""

import numpy as np
import pytest

from learners.errors import ConfigError
from learners.registry import build_learner, default_config
from learners.search import Fidelity, MetaObjective, SearchSpace, apply_params, make_pruner, make_sampler, open_study, search_space
from learners.search.study import finished, pruned


@pytest.mark.parametrize("task,algo", [("sine", "maml"), ("sine", "reptile"), ("omniglot", "protonet"), ("omniglot", "fomaml"),
                                       ("omniglot", "reptile")])
def test_every_point_of_a_space_builds_a_learner(task, algo):
    space = search_space(task, algo)
    rng = np.random.default_rng(0)
    for _ in range(5):
        params = space.sample(rng)
        config = apply_params(default_config(task, algo), params)
        learner = build_learner(config)
        for name in ("meta_lr", "inner_lr", "inner_steps", "optimizer"):
            if name in params:
                assert learner.hyperparameters()[name] == params[name]
    assert SearchSpace.from_dict(space.to_dict()) == space  # a space round-trips through JSON-able data


def test_bad_spaces_say_what_is_wrong():
    with pytest.raises(ConfigError, match="needs choices"):
        SearchSpace.from_dict({"x": {"type": "categorical"}})
    with pytest.raises(ConfigError, match="low <= high"):
        SearchSpace.from_dict({"x": {"type": "float", "low": 2, "high": 1}})
    with pytest.raises(ConfigError, match="no search space"):
        search_space("sine", "protonet")  # a classifier on a regression task


def test_a_study_prunes_bad_trials_on_intermediate_scores():
    objective = MetaObjective(default_config("sine", "maml"), search_space("sine", "maml"), Fidelity(iterations=40, rungs=4,
                                                                                                     val_episodes=20))
    study = open_study("prune", sampler=make_sampler("random", seed=1), pruner=make_pruner("hyperband", rungs=4))
    study.optimize(objective, n_trials=10)
    assert pruned(study) and finished(study)
    assert all(len(t.intermediate_values) < 4 for t in pruned(study))  # stopped before the full budget
    assert all(len(t.intermediate_values) == 4 for t in finished(study))


@pytest.mark.parametrize("name", ["tpe", "gp", "random"])
def test_every_sampler_minimises_a_known_function(name):
    study = open_study(name, sampler=make_sampler(name, seed=0, startup_trials=5))
    study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1.0) ** 2 + (t.suggest_int("k", 0, 4) - 3) ** 2, n_trials=25)
    assert study.best_value < 0.5
    with pytest.raises(ConfigError, match="unknown sampler"):
        make_sampler("annealing")


def test_a_budget_aware_search_trains_for_seconds_and_never_answers_worse_than_a_configuration_it_was_given():
    from learners.registry import merge
    from learners.search.budget import WallBudget, enqueue_known, known_name

    budget = WallBudget(final_s=3.0, min_s=1.0, eta=2, val_episodes=10)
    assert budget.rungs == (1, 2, 3)  # the top rung is the final budget
    base = default_config("sine", "maml")
    slow = merge(base, meta_batch=50)
    known = {"defaults": base, "slow": slow}
    space = search_space("sine", "maml")
    objective = MetaObjective(base, space, budget=budget, known=known)
    study = open_study("budget", sampler=make_sampler("random", seed=3), pruner=budget.pruner())
    enqueue_known(study, known, space)
    enqueue_known(study, known, space)  # a joined study queues them once
    study.optimize(objective, n_trials=6)
    first = study.trials[:2]
    assert [known_name(t) for t in first] == ["defaults", "slow"] and all(t.state.name == "COMPLETE" for t in first)
    assert first[1].params["meta_batch"] == 50  # the sampler sees the known point as a point of its space
    assert max(first[0].intermediate_values) == budget.rungs[-1]  # reported at the rungs' seconds, the last the budget
    # never pruned, but their values stand at the rungs: the bar the sampled trials must clear there
    assert all("completed_rung_0" in t.system_attrs for t in first)
    assert study.best_value <= min(t.value for t in first)
    assert objective.config_of(study.best_trial) == (known[known_name(study.best_trial)] if known_name(study.best_trial)
                                                     else objective.config_for(study.best_trial.params))
    assert all(known_name(t) is None for t in study.trials[2:])
