"""A small hyperparameter study on a worker's buffered tasks, whose winner becomes an ordinary
guarded candidate.

The gate's held-out tasks (the newest, see :func:`heldout_split`) are taken out of the buffer the
trials see: each trial proposes from the champion on the rest and is scored on *their* newest
held-out tasks, so the gate's judgement of the winner stays on tasks the search never looked at.
The winner's configuration (learner rates, continual strengths, replay share) is then run through
:func:`propose_guarded` on the whole buffer: the same gate and forgetting guard as any update.

Like the offline search (``search/budget.py``) the study's first trial is the configuration it
already has, and a trial trains as long as the winner will, so the answer is never worse on the
trials' validation than keeping the current rates. Its budget is counted in meta-iterations, not
seconds: an audit rebuilds a searched version bit for bit, which a wall-clock budget would not allow.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..search.budget import params_of
from ..search.space import SearchSpace
from ..search.spaces import apply_params
from .guard import era_scores
from .guarded import GuardedProposal, GuardPlan, UpdatePlan, propose_guarded
from .heldout import held_out_count, heldout_split
from .learner import OnlineMetaLearner
from .replay import TaskReplayBuffer


@dataclass
class SearchOutcome:
    proposal: GuardedProposal
    config: dict[str, Any]  # the winner's config: what the published version carries
    params: dict[str, Any]
    figures: dict[str, float] = field(default_factory=dict)  # trials, best and champion validation error, seconds


def _plans(config: dict[str, Any], plan: UpdatePlan, guard: GuardPlan | None) -> tuple[UpdatePlan, GuardPlan | None]:
    """The update plan and guard a config's own continual section asks for."""
    own = config.get("continual", {})
    plan = dataclasses.replace(plan, recent_share=float(own.get("recent_share", plan.recent_share)))
    if guard is not None:
        guard = dataclasses.replace(guard, distill=float(own.get("distill", guard.distill)), ewc=float(own.get("ewc", guard.ewc)))
    return plan, guard


def _train_winner(winner_config: dict[str, Any], champion: OnlineMetaLearner, weights: bytes, buffer: TaskReplayBuffer,
                  plan: UpdatePlan, guard: GuardPlan | None, seed: int, should_stop: Callable[[], bool] | None):
    """The winning configuration trained as the plan says (a trial trains less), guarded like any update."""
    winner_plan, winner_guard = _plans(winner_config, plan, guard)
    if winner_guard is not None:  # the era being learned is guarded against the champion as published, in its own config
        champion.load_weights(weights)
        winner_guard = dataclasses.replace(winner_guard, parent=era_scores(champion.champion, champion.probe_batches(guard.probes)))
    winner = OnlineMetaLearner(winner_config, seed=seed)
    winner.load_weights(weights)
    return propose_guarded(winner, buffer, winner_plan, winner_guard, should_stop)


def _current_point(config: dict[str, Any], plan: UpdatePlan, guard: GuardPlan | None, space: SearchSpace) -> dict[str, Any] | None:
    """Where the model stands in the space: its config's rates and the continual strengths the
    worker applies to it (``None`` when one lies outside the space)."""
    own = config.get("continual", {})
    implied = {"recent_share": plan.recent_share, **({"ewc": guard.ewc, "distill": guard.distill} if guard is not None else {})}
    return params_of(apply_params(config, {k: own.get(k, v) for k, v in implied.items()}), space)


def search_guarded(config: dict[str, Any], weights: bytes, buffer: TaskReplayBuffer, plan: UpdatePlan, guard: GuardPlan | None,
                   space: SearchSpace, trials: int, seed: int, should_stop: Callable[[], bool] | None = None,
                   trial_iterations: int | None = None) -> SearchOutcome | None:
    """``None`` when there are too few tasks, no trial finished, or ``should_stop`` said so. Each
    trial trains ``trial_iterations`` (default: the plan's); the winner trains as the plan says."""
    import optuna

    started = time.perf_counter()
    champion = OnlineMetaLearner(config, seed=seed)
    ready = buffer.tasks_with(champion.points_per_task)
    if len(ready) < 2 * (held_out_count(len(ready), plan.heldout) + 2):  # the gate's tasks, and as many again for the trials
        return None
    held, _ = heldout_split(ready, plan.heldout)
    inner = buffer.snapshot()
    for tid in held:
        inner.remove(tid)
    regression = champion.kind == "regression"
    champion_error: list[float] = []

    def objective(trial) -> float:
        if should_stop is not None and should_stop():
            trial.study.stop()
            raise optuna.TrialPruned("the update was pre-empted")
        cfg = apply_params(config, space.suggest(trial))
        trial_plan, trial_guard = _plans(cfg, dataclasses.replace(plan, iterations=trial_iterations or plan.iterations), guard)
        learner = OnlineMetaLearner(cfg, seed=seed + trial.number)
        learner.load_weights(weights)
        old = trial_guard.old_tasks if trial_guard else None
        proposal = learner.propose(inner, trial_plan.iterations, trial_plan.meta_batch, trial_plan.heldout, trial_plan.recent,
                                   trial_plan.recent_share, should_stop=should_stop,
                                   distill=trial_guard.distill if trial_guard else 0.0, distill_tasks=old,
                                   ewc=trial_guard.ewc if trial_guard and old else 0.0)
        if proposal is None:
            raise optuna.TrialPruned("too few tasks, or pre-empted")
        if not champion_error:
            champion_error.append(proposal.champion_score if regression else 1 - proposal.champion_score)
        error = proposal.candidate_score if regression else 1 - proposal.candidate_score
        if error != error:  # the trial's rates made the candidate diverge: a bad trial, not a failure
            raise optuna.TrialPruned("diverged (non-finite validation error)")
        return error

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(trials // 2, 1)))
    current = _current_point(config, plan, guard, space)
    if current is not None:
        study.enqueue_trial(current)  # the rates it has: the first trial
    study.optimize(objective, n_trials=trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done or (should_stop is not None and should_stop()):
        return None
    params = dict(study.best_params)
    winner_config = apply_params(config, params)
    proposal = _train_winner(winner_config, champion, weights, buffer, plan, guard, seed, should_stop)
    if proposal is None:
        return None
    figures = {"trials": float(len(study.trials)), "finished_trials": float(len(done)), "best_validation_error": study.best_value,
               "champion_validation_error": champion_error[0] if champion_error else float("nan"),
               "first_trial_error": study.trials[0].value if study.trials[0].value is not None else float("nan"),
               "search_seconds": time.perf_counter() - started}
    return SearchOutcome(proposal, winner_config, params, figures)
