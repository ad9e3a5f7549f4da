"""A model's state going back to a published version: its weights in a learner of its own config.
A search's winner changes the learner config (rates, strengths, width); a restarted worker that
loaded such weights into the configured learner scored every candidate against a champion it
could no longer adapt, and its forgetting guard rejected them all."""

import copy

import pytest


@pytest.fixture
def model():
    from streams.settings import Settings
    from streams.worker.state import WorkerState

    return WorkerState.from_settings(Settings.of(metrics_port=0)).models["sine"]


def _searched(config: dict) -> dict:
    searched = copy.deepcopy(config)
    searched["learner"]["inner_lr"] = float(searched["learner"].get("inner_lr", 0.01)) * 3
    searched["backbone"]["hidden"] = 17  # another width: its weights do not fit the configured learner
    return searched


def test_a_searched_version_loads_into_a_learner_of_its_own_config(model):
    from learners.online import OnlineMetaLearner

    searched = _searched(model.learner.config)
    weights = OnlineMetaLearner(searched, seed=3).weights_bytes()
    with pytest.raises(Exception):  # the reason for the fix: the configured learner cannot take them
        OnlineMetaLearner(model.learner.config).load_weights(weights)
    model.remember(1, weights, searched)
    assert model.load_version(1)
    assert model.learner.config["backbone"]["hidden"] == 17 and model.weights_version == 1
    assert model.learner.weights_bytes() == weights


def test_a_version_of_the_configured_config_keeps_the_learner(model):
    learner = model.learner
    weights = learner.weights_bytes()
    model.remember(1, weights, copy.deepcopy(learner.config))
    assert model.load_version(1) and model.learner is learner
    assert not model.load_version(2)  # never published: nothing changes
    assert model.weights_version == 1


def test_rebuild_learns_on_from_the_champion_after_a_rollback_with_its_config(model):
    from learners.online import OnlineMetaLearner
    from streams.worker.recovery.rebuild import _learn_on_from

    base = copy.deepcopy(model.learner.config)
    searched = _searched(base)
    model.remember(1, OnlineMetaLearner(searched, seed=1).weights_bytes(), searched)
    model.remember(2, OnlineMetaLearner(base, seed=2).weights_bytes(), base)
    model.version, model.aliases.champion = 2, 1  # v2 was rolled back: the live worker went back to v1
    _learn_on_from(model)
    assert model.weights_version == 1 and model.learner.config["backbone"]["hidden"] == 17


def test_rebuild_skips_a_version_that_does_not_load(model):
    from streams.worker.recovery.rebuild import _learn_on_from

    good = model.learner.weights_bytes()
    model.remember(1, good, copy.deepcopy(model.learner.config))
    model.remember(2, b"not safetensors", copy.deepcopy(model.learner.config))
    model.version = 2
    _learn_on_from(model)
    assert model.weights_version == 1 and model.version == 2  # numbering goes on from the newest


def test_after_a_revert_the_guard_holds_candidates_to_the_champions_line_only(model):
    """The self-healing run's trap: a rollback reverted the worker seven versions back, and every
    era's best, taken over all versions ever published, was one the champion's line never reached:
    the guard rejected every candidate for the rest of the run."""
    from learners.online import EraScore
    from streams.records.wire import Cause
    from streams.worker.learning.jobs import build_job
    from streams.settings import Settings

    weights = model.learner.weights_bytes()
    for version, parent, points in [(1, 0, 50.0), (2, 1, 60.0), (3, 2, 80.0), (4, 3, 85.0)]:
        model.remember(version, weights, copy.deepcopy(model.learner.config))
        model.guard.record(version, {0: EraScore.same(points)}, parent)
    model.version, model.weights_version = 4, 4
    settings = Settings.of(metrics_port=0)
    assert build_job(model, settings, Cause.SCHEDULE, 1).guard.best[0].points == 85.0
    assert model.load_version(2)  # v3 and v4 rolled back: the worker learns on from the champion v2
    assert build_job(model, settings, Cause.SCHEDULE, 2).guard.best[0].points == 60.0
    model.guard.record(5, {0: EraScore.same(58.0)}, parent=2)  # the first version after the revert
    model.version = model.weights_version = 5
    assert build_job(model, settings, Cause.SCHEDULE, 3).guard.best[0].points == 60.0


def test_an_era_judged_a_known_regime_is_folded_into_the_update_jobs_and_their_recipes(model):
    from learners.online import EraScore
    from streams.records.wire import Cause
    from streams.settings import Settings
    from streams.worker.learning.jobs import build_job
    from streams.worker.learning.recipe import Recipe, recipe_of

    model.guard.record(1, {0: EraScore.same(60.0)})
    model.version = model.weights_version = 1
    model.drift.era = 3
    assert model.guard.fold(2, 0) and model.guard.fold(3, 2) and model.guard.folded == {2: 0, 3: 0}
    job = build_job(model, Settings.of(metrics_port=0), Cause.SCHEDULE, 1)
    assert job.guard.folded == (2, 3)
    recipe = Recipe.from_json(recipe_of(job, "schedule", 1, {0: 1}, 5, {}).to_json())
    assert recipe.job_for(job.weights, job.buffer, job.guard.probes, [], 3).guard.folded == (2, 3)  # a rebuild folds the same
