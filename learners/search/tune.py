"""A whole hyperparameter search, as ``metastream tune`` runs it: a study over the task's search
space (joined if it already exists in the storage), then the best configuration meta-trained with
the final budget and saved as a normal model folder, with the study's summary beside it.

With a :class:`~learners.search.budget.WallBudget` (the command's default) the search knows its
budget: trials train for seconds, the top rung is the final budget, and the task's default
configuration is the first trial, so the answer is never worse on validation than the defaults."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna

from ..registry import default_config, merge
from ..run import train_run
from .budget import WallBudget, enqueue_known, known_name
from .objective import Fidelity, MetaObjective
from .spaces import search_space
from .study import best_params, finished, make_pruner, make_sampler, open_study, pruned


@dataclass
class TuneResult:
    study: optuna.Study
    best_params: dict[str, Any]
    best_value: float
    config: dict[str, Any]
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"study": self.study.study_name, "trials": len(self.study.trials), "finished": len(finished(self.study)),
                "pruned": len(pruned(self.study)), "best_value": self.best_value, "best_params": self.best_params,
                "seconds": round(self.seconds, 1), "final": self.metrics}


def tune(task: str, algo: str, out: str | Path, *, trials: int | None = 20, budget_s: float | None = None,
         sampler: str = "tpe", pruner: str = "sha", storage: str | None = None, study_name: str | None = None,
         fidelity: Fidelity = Fidelity(), final_iterations: int | None = None, final_budget_s: float | None = 300.0,
         seed: int = 0, device: str = "cpu", base: dict[str, Any] | None = None, budget: WallBudget | None = None,
         known: dict[str, dict[str, Any]] | None = None,
         on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
         on_final_log: Callable[[dict[str, Any]], None] | None = None) -> TuneResult:
    """Search, then train the winner into ``out`` (``model.safetensors``, ``config.json``,
    ``history.jsonl``, ``study.json``). ``storage`` defaults to the journal file ``out/study.journal``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = merge(base or default_config(task, algo), seed=seed)
    space = search_space(task, algo)
    known = {"defaults": base} if known is None else known
    prune = budget.pruner(pruner) if budget is not None and pruner in ("sha", "hyperband") else make_pruner(pruner, fidelity.rungs)
    study = open_study(study_name or f"{task}-{algo}", storage or str(out / "study.journal"), make_sampler(sampler, seed), prune)
    enqueue_known(study, known, space)
    objective = MetaObjective(base, space, fidelity, device=device, budget=budget, known=known)
    callbacks = [lambda s, t: on_trial(s, t)] if on_trial else []
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, timeout=budget_s, callbacks=callbacks, catch=(RuntimeError,))
    params = best_params(study)
    config = objective.config_of(study.best_trial)
    final_s = budget.final_s if budget is not None and not final_iterations else final_budget_s
    _, _, metrics = train_run(config, out, iterations=final_iterations, budget_s=None if final_iterations else final_s,
                              device=device, on_log=on_final_log)
    metrics["best_trial"] = known_name(study.best_trial) or f"trial {study.best_trial.number}"
    result = TuneResult(study, params, float(study.best_value), config, time.perf_counter() - started, metrics)
    (out / "study.json").write_text(json.dumps(result.summary(), indent=2, sort_keys=True, default=str))
    return result
