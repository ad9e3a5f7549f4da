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
