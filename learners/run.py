"""A whole meta-training run from a config: build, train with periodic validation, checkpoint.

The CLI, the quick-start and the benchmarks all go through here so they train the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable


from .base import MetaLearner
from .checkpoint import HISTORY, save_checkpoint
from .evaluation import evaluate_learner
from .registry import build_learner, build_tasks
from .settings import resolve_device, seed_everything
from .training import TrainResult, meta_train


def validation_tasks(config: dict[str, Any]):
    """Meta-validation tasks: fresh sine tasks, or within-alphabet episodes of held-out alphabets."""
    if config["task"]["name"] == "sine":
        return build_tasks(config, "val")
    return build_tasks(config, "val", queries=min(config["task"]["queries"], 5), within_alphabet=True)


def train_run(
    config: dict[str, Any],
    out: str | Path | None,
    *,
    iterations: int | None = None,
    budget_s: float | None = None,
    device: str = "auto",
    validate_every: int = 200,
    val_episodes: int = 100,
    final_episodes: int = 600,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[MetaLearner, TrainResult, dict[str, Any]]:
    """Train the learner a config describes; save it under ``out`` (if given) even when interrupted."""
    gen = seed_everything(int(config.get("seed", 0)))
    dev = resolve_device(device)
    learner = build_learner(config)
    learner.model.to(dev)
    tasks = build_tasks(config, "train")
    has_val = config["task"]["name"] == "sine" or bool(config["task"].get("val_alphabets"))
    lazy: dict[str, Any] = {}  # meta-validation tasks, built when first used (60-way episodes need 60 characters)

    def val_tasks():
        if "val" not in lazy:
            lazy["val"] = validation_tasks(config)
        return lazy["val"]
    history_file = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        history_file = open(Path(out) / HISTORY, "w")

    def validate() -> dict[str, float]:
        r = evaluate_learner(learner, val_tasks(), episodes=val_episodes, seed=777, device=dev)
        return {r["metric"]: r["after"]}

    def log(record: dict[str, Any]) -> None:
        if history_file:
            history_file.write(json.dumps(record) + "\n")
            history_file.flush()
        if on_log:
            on_log(record)

    meta_batch = int(config["meta_batch"])
    result = meta_train(
        learner, lambda g: tasks.sample(meta_batch, g), gen, iterations=iterations, budget_s=budget_s,
        device=dev, validate=validate if has_val else None, validate_every=validate_every, on_log=log,
    )
    if history_file:
        history_file.close()
    metrics: dict[str, Any] = {"iterations": result.iterations, "seconds": round(result.seconds, 2),
                               "interrupted": result.interrupted}
    if has_val and not result.interrupted and final_episodes:
        metrics["validation"] = evaluate_learner(learner, val_tasks(), episodes=final_episodes, device=dev)
    if out is not None:
        save_checkpoint(out, learner, config, metrics)
    return learner, result, metrics
