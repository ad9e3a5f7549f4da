"""The objective every search minimises: the product's own metric, the error after few-shot
adaptation on meta-validation tasks (MSE for regression, 1 - accuracy for classification), never
on a test set. A trial meta-trains its config for a fixed number of iterations and reports the
validation error at ``rungs`` evenly spaced points, so a pruner can stop a bad trial early.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

from ..evaluation import evaluate_learner
from ..registry import build_learner, build_tasks
from ..settings import resolve_device, seed_everything
from ..training import meta_train
from .budget import WallBudget, known_in_space, known_name
from .space import SearchSpace
from .spaces import apply_params


@dataclass(frozen=True)
class Fidelity:
    """How much a trial may spend: ``iterations`` meta-iterations in all, scored after each of
    ``rungs`` equal parts on ``val_episodes`` meta-validation episodes."""

    iterations: int = 400
    rungs: int = 4
    val_episodes: int = 100


def protocol_tasks(config: dict[str, Any], split: str, ways: int | None = None, shots: int | None = None):
    """The evaluation protocol's tasks: sine tasks, or within-alphabet ``ways``-way ``shots``-shot
    episodes of the split's alphabets (whatever episodes the config trains on)."""
    if config["task"]["name"] == "sine":
        return build_tasks(config, split)
    return build_tasks(config, split, ways=ways or config["task"]["ways"], shots=shots or 1, queries=5, within_alphabet=True)


DIVERGED_MSE = 10.0  # a diverged regression trial scores worse than predicting zero (about 4.2 on sine)


def adapted_error(learner, tasks, episodes: int, seed: int, device="cpu") -> float:
    """Mean error after adaptation: MSE (capped at :data:`DIVERGED_MSE`, which also stands for a
    diverged run's NaN), or 1 - accuracy (a NaN counts as 1)."""
    result = evaluate_learner(learner, tasks, episodes=episodes, seed=seed, device=device)
    if result["metric"] == "mse":
        value = result["after"]
        return DIVERGED_MSE if not value == value else min(value, DIVERGED_MSE)
    return 1.0 - result["after"] if result["after"] == result["after"] else 1.0


class MetaObjective:
    """``objective(trial)`` for Optuna: suggest a point of ``space``, apply it to ``base``,
    meta-train, report and return the validation error. Trials are seeded the same way, so two
    trials differ only by their parameters.

    With a :class:`WallBudget` a trial trains for seconds instead (its rungs are seconds; the last
    is the final budget), and ``known`` configurations (by name; queue them with
    :func:`enqueue_known`) run as they are and are never pruned."""

    def __init__(self, base: dict[str, Any], space: SearchSpace, fidelity: Fidelity = Fidelity(), eval_ways: int | None = None,
                 eval_shots: int | None = None, val_seed: int = 777, device: str = "cpu",
                 on_report: Callable[[int, float], None] | None = None, budget: WallBudget | None = None,
                 known: dict[str, dict[str, Any]] | None = None) -> None:
        self.base, self.space, self.fidelity = copy.deepcopy(base), space, fidelity
        self.eval_ways, self.eval_shots, self.val_seed = eval_ways, eval_shots, val_seed
        self.device = resolve_device(device)
        self.on_report = on_report
        self.budget, self.known = budget, dict(known or {})

    def config_for(self, params: dict[str, Any]) -> dict[str, Any]:
        return apply_params(self.base, params)

    def config_of(self, trial) -> dict[str, Any]:
        """The config a trial trained: a known one as given, else its parameters applied to the base."""
        name = known_name(trial)
        return copy.deepcopy(self.known[name]) if name in self.known else self.config_for(trial.params)

    def __call__(self, trial) -> float:
        name = known_name(trial)
        if name in self.known:
            if known_in_space(trial):
                self.space.suggest(trial)  # the queued point, so the sampler learns from it
            return self.train_and_score(copy.deepcopy(self.known[name]), trial, prunable=False)
        params = self.space.suggest(trial)
        return self.train_and_score(self.config_for(params), trial)

    def train_and_score(self, config: dict[str, Any], trial=None, iterations: int | None = None, prunable: bool = True) -> float:
        """Meta-train ``config`` and return its final validation error (reporting to ``trial``)."""
        import optuna

        if self.budget is not None and iterations is None:
            return self._train_for_seconds(config, trial, prunable)
        total = iterations or self.fidelity.iterations
        every = max(total // self.fidelity.rungs, 1)
        gen = seed_everything(int(config.get("seed", 0)))
        learner = build_learner(config)
        learner.model.to(self.device)
        tasks = build_tasks(config, "train")
        val = protocol_tasks(config, "val", self.eval_ways, self.eval_shots)
        meta_batch = int(config["meta_batch"])
        last: dict[str, float] = {}

        def validate() -> dict[str, float]:
            error = adapted_error(learner, val, self.fidelity.val_episodes, self.val_seed, self.device)
            step = (len(last.get("steps", [])) + 1) * every
            last["error"] = error
            last.setdefault("steps", []).append(step)
            if self.on_report:
                self.on_report(step, error)
            if trial is not None:
                trial.report(error, step)
                # asked even where it may not prune: successive halving records a trial's value at a rung
                # only when asked, and a known trial's values are the bar the others must clear
                if trial.should_prune() and prunable:
                    raise optuna.TrialPruned(f"pruned at {step} iterations with validation error {error:.4g}")
            return {"error": error}

        meta_train(learner, lambda g: tasks.sample(meta_batch, g), gen, iterations=total, device=self.device,
                   validate=validate, validate_every=every, log_every=10**9)
        if "error" not in last or last["steps"][-1] != total:
            validate()
        return last["error"]

    def _train_for_seconds(self, config: dict[str, Any], trial, prunable: bool) -> float:
        """Meta-train for the budget's final seconds, validating at each rung (reported at the rung's
        seconds, where the pruner compares the trials that got that far)."""
        import optuna

        budget = self.budget
        gen = seed_everything(int(config.get("seed", 0)))
        learner = build_learner(config)
        learner.model.to(self.device)
        tasks = build_tasks(config, "train")
        val = protocol_tasks(config, "val", self.eval_ways, self.eval_shots)
        meta_batch = int(config["meta_batch"])
        rungs, errors = list(budget.rungs), []

        def validate() -> dict[str, float]:
            error = adapted_error(learner, val, budget.val_episodes, self.val_seed, self.device)
            step = rungs[min(len(errors), len(rungs) - 1)]
            errors.append(error)
            if self.on_report:
                self.on_report(step, error)
            if trial is not None:
                trial.report(error, step)
                if step < rungs[-1] and trial.should_prune() and prunable:  # asked for a known trial too: see above
                    raise optuna.TrialPruned(f"pruned after {step}s of training with validation error {error:.4g}")
            return {"error": error}

        meta_train(learner, lambda g: tasks.sample(meta_batch, g), gen, budget_s=budget.final_s, device=self.device,
                   validate=validate, validate_every=10**9, log_every=10**9, validate_at_s=tuple(rungs[:-1]))
        while len(errors) < len(rungs):  # the final rung (and any a stopped run skipped)
            validate()
        return errors[-1]
