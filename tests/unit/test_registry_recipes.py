"""The torch-free recipes agree with the learner classes the registry builds."""

from learners import recipes
from learners.metric import MetricLearner
from learners.registry import ALGORITHMS


def test_recipes_name_every_algorithm_and_its_kind():
    assert tuple(ALGORITHMS) == recipes.ALGORITHMS
    assert {a for a, cls in ALGORITHMS.items() if issubclass(cls, MetricLearner)} == set(recipes.METRIC_ALGORITHMS)
