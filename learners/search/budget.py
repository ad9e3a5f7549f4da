"""A search that knows its budget. A trial is meta-trained for wall-clock seconds, not iterations,
so a configuration that is slower per iteration pays for it; its largest rung *is* the final
meta-training budget, so what the study ranks is what the final run will get; the pruner stops
the weak trials at the smaller rungs (successive halving by ``eta``, one bracket: Hyperband's
brackets split a study of a few tens of trials so finely that a 20-minute Omniglot study of 7
trials pruned none). The configurations a user
already has (a paper's textbook recipe, the current defaults) are the study's first trials and
are never pruned: the study's answer is never worse on validation than one of them.

>>> budget = WallBudget(final_s=180, min_s=20)
>>> budget.rungs
(20, 60, 180)
>>> type(budget.pruner()).__name__, type(budget.pruner("hyperband")).__name__
('SuccessiveHalvingPruner', 'HyperbandPruner')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from learners.errors import ConfigError

from .space import SearchSpace
from .spaces import SECTIONS

KNOWN = "known"  # the user attribute that names a known configuration's trial
IN_SPACE = "known_in_space"  # ... and whether it stands at a point of the space (its parameters were queued)
IMPLIED = {"dropout": 0.0, "optimizer": "adam"}  # what a config that leaves these out gets (the backbones' and learners' defaults)


@dataclass(frozen=True)
class WallBudget:
    """``final_s`` seconds of meta-training for a trial that survives every rung; the rungs at
    ``min_s * eta**k`` seconds below it; ``val_episodes`` meta-validation episodes per report."""

    final_s: float
    min_s: float
    eta: int = 3
    val_episodes: int = 100

    @property
    def rungs(self) -> tuple[int, ...]:
        """Seconds of training at which a trial reports (the last is the final budget)."""
        steps, at = [], float(self.min_s)
        while at < self.final_s * 0.999:
            if round(at) >= 1:  # Optuna's steps are whole numbers: seconds
                steps.append(int(round(at)))
            at *= self.eta
        return tuple(steps) + (int(round(self.final_s)),)

    def pruner(self, name: str = "sha") -> optuna.pruners.BasePruner:
        """Successive halving (``"sha"``) or Hyperband whose resource is seconds of training, from
        ``min_s`` to the final budget."""
        least = max(int(round(self.min_s)), 1)
        if name == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=least, max_resource=int(round(self.final_s)), reduction_factor=self.eta)
        if name == "sha":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=least, reduction_factor=self.eta)
        raise ConfigError(f"a budget-aware search prunes with 'sha' or 'hyperband', not {name!r}")


def params_of(config: dict[str, Any], space: SearchSpace) -> dict[str, Any] | None:
    """The point of ``space`` a config stands at, or ``None`` when one of its values lies outside
    the space (the trial then runs the config as it is, and the sampler does not learn from it)."""
    params = {}
    for p in space.params:
        section = next((s for s, names in SECTIONS.items() if p.name in names), None)
        holder = config if section is None else config.get(section, {})
        if p.name not in holder and p.name not in IMPLIED:
            return None
        value = holder.get(p.name, IMPLIED.get(p.name))
        inside = value in p.choices if p.kind == "categorical" else p.low <= value <= p.high
        if not inside:
            return None
        params[p.name] = value
    return params


def enqueue_known(study: optuna.Study, known: dict[str, dict[str, Any]], space: SearchSpace) -> None:
    """Queue each known configuration as a trial (once per study: a joined study has them already)."""
    queued = {t.user_attrs.get(KNOWN) for t in study.trials}
    for name, config in known.items():
        if name not in queued:
            params = params_of(config, space)
            study.enqueue_trial(params or {}, user_attrs={KNOWN: name, IN_SPACE: params is not None})


def known_name(trial: optuna.trial.BaseTrial) -> str | None:
    """The known configuration a trial runs, if it runs one."""
    return trial.user_attrs.get(KNOWN) if hasattr(trial, "user_attrs") else None


def known_in_space(trial: optuna.trial.BaseTrial) -> bool:
    return bool(trial.user_attrs.get(IN_SPACE)) if hasattr(trial, "user_attrs") else False
