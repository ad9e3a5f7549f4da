"""Optuna studies: the samplers (TPE by default, Optuna's Gaussian-process sampler for Bayesian
optimisation, random search as the baseline), the pruners, and the storage several processes or
machines can share.

>>> study = open_study("doc", sampler=make_sampler("random", seed=0))
>>> study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.5) ** 2, n_trials=5)
>>> len(study.trials), study.direction.name
(5, 'MINIMIZE')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from ..errors import ConfigError

SAMPLERS = ("tpe", "gp", "random")
PRUNERS = ("hyperband", "sha", "median", "none")

optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is shown by the caller, not logged per trial


def make_sampler(name: str = "tpe", seed: int | None = 0, startup_trials: int = 10) -> optuna.samplers.BaseSampler:
    """``tpe``: multivariate TPE (models the parameters jointly; ``startup_trials`` random trials
    first); ``gp``: Gaussian-process Bayesian optimisation (expected improvement, on torch);
    ``random``: the baseline."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup_trials)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(name: str = "hyperband", rungs: int = 4) -> optuna.pruners.BasePruner:
    """``hyperband`` (successive halving over several brackets), ``sha`` (one bracket of
    successive halving), ``median``, or ``none``."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=rungs, reduction_factor=2)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


def make_storage(url: str | None) -> Any:
    """``None``: in memory; ``sqlite:///study.db`` or any SQLAlchemy URL: an RDB storage; any other
    text is a journal file path (safe for several processes on one machine, or on a shared disk)."""
    if url is None:
        return None
    if "://" in url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(url).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(url)))


def open_study(name: str, storage: str | None = None, sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the study ``name`` in ``storage``, or join it if it exists (that is how several
    processes work on one study)."""
    return optuna.create_study(study_name=name, storage=make_storage(storage), sampler=sampler or make_sampler(),
                               pruner=pruner or optuna.pruners.NopPruner(), direction="minimize", load_if_exists=True)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def pruned(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]


def best_params(study: optuna.Study) -> dict[str, Any]:
    if not finished(study):
        raise ConfigError(f"study {study.study_name!r} has no finished trial yet: run more trials or a longer budget")
    return dict(study.best_params)
