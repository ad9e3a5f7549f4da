"""Search over learners' hyperparameters and architectures (Optuna for the Bayesian and random
searches; regularized evolution and differentiable architecture search of our own): spaces as
data, the product's own objective, studies several processes can share."""

from .objective import Fidelity, MetaObjective, adapted_error, protocol_tasks
from .space import Param, SearchSpace
from .spaces import SPACES, apply_params, search_space
from .study import SAMPLERS, best_params, make_pruner, make_sampler, open_study

__all__ = ["Fidelity", "MetaObjective", "Param", "SAMPLERS", "SPACES", "SearchSpace", "adapted_error", "apply_params",
           "best_params", "make_pruner", "make_sampler", "open_study", "protocol_tasks", "search_space"]
