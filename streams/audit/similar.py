"""``metastream similar MODEL_OR_TASK_FILE``: the published models nearest to a model or to a file
of labelled rows, by task encoding, from the log alone. Each candidate (the latest version of every
model whose features fit) encodes the target's tasks and a sample of its own recent tasks (read
back from the experiences topic); the cosine of the two mean encodings is their similarity, as
when the new-models policy picks where a new agent type starts (``learners/transfer/cold_start.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learners.errors import ConfigError
from learners.online import OnlineMetaLearner, TaskReplayBuffer
from learners.transfer.cold_start import compatible, similarity

from streams.catalog.presets import model_dims
from streams.settings import Settings
from streams.kafka.topics import read_records
from streams.worker.validation import Rejected, validate_batch

TASKS = 32  # recent tasks of each model compared


@dataclass
class Nearby:
    model_id: str
    version: int
    algo: str
    similarity: float
    tasks: int  # the model's own tasks the comparison used


async def _latest_versions(bootstrap: str, settings: Settings) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for _, rec in await read_records(bootstrap, settings.topics.models, "ModelVersion"):
        if rec["model_id"] not in latest or rec["version"] > latest[rec["model_id"]]["version"]:
            latest[rec["model_id"]] = rec
    return latest


async def _own_tasks(bootstrap: str, settings: Settings, configs: dict[str, dict]) -> dict[str, TaskReplayBuffer]:
    """Each model's tasks from the experiences topic (the newest kept; malformed records skipped)."""
    dims = {mid: model_dims(cfg) for mid, cfg in configs.items()}
    buffers = {mid: TaskReplayBuffer(8 * 2**20, 4096) for mid in configs}  # whole tasks, whatever the worker kept
    for _, rec in await read_records(bootstrap, settings.topics.experiences, "ExperienceBatch"):
        if rec.get("model_id") not in dims:
            continue
        try:
            batch = validate_batch(rec, known_models=dims, max_rows=settings.ingest.max_batch_rows, missing_ok=set(dims))
        except Rejected:
            continue
        for tid in dict.fromkeys(batch.task_ids):
            rows = [i for i, t in enumerate(batch.task_ids) if t == tid]
            buffers[batch.model_id].add(tid, batch.features[rows], batch.targets[rows])
    return buffers


def task_file(path: Path, label: str, task_column: str | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """A CSV or Parquet file of labelled rows as tasks: one per value of ``task_column``, or one."""
    from learners.tabular.data import read_table

    table = read_table(path, label, classification=True)
    if task_column is None:
        return [("file", table.X, table.y.astype("f4")[:, None])]
    if task_column not in table.names:
        raise ConfigError(f"{path} has no column {task_column!r}; its columns: {', '.join(table.names)}")
    j = table.names.index(task_column)
    keep = [i for i in range(len(table.names)) if i != j]
    return [(f"task-{v:g}", table.X[table.X[:, j] == v][:, keep], table.y[table.X[:, j] == v].astype("f4")[:, None])
            for v in np.unique(table.X[:, j])]


async def nearest(bootstrap: str, settings: Settings, target: str, label: str | None = None,
                  task_column: str | None = None) -> list[Nearby]:
    """Every fitting model with its similarity to ``target`` (a model id, or a task file), nearest first."""
    latest = await _latest_versions(bootstrap, settings)
    configs = {mid: json.loads(rec["config_json"]) for mid, rec in latest.items()}
    own = await _own_tasks(bootstrap, settings, configs)
    if target in latest:
        target_tasks = own[target]
        fits = {mid for mid in latest if mid != target and compatible(configs[mid], configs[target])}
    elif Path(target).is_file():
        if not label:
            raise ConfigError(f"{target} is a file of rows: name its label column with --label")
        target_tasks = TaskReplayBuffer(8 * 2**20, 10**6)
        for tid, x, y in task_file(Path(target), label, task_column):
            target_tasks.add(tid, x, y)
        width = target_tasks.arrays(target_tasks.task_ids()[0])[0].shape[1] if target_tasks.num_tasks else 0
        fits = {mid for mid in latest if model_dims(configs[mid])[0] == width}
    else:
        raise ConfigError(f"{target!r} is neither a model on {settings.topics.models} ({', '.join(sorted(latest)) or 'none yet'}) "
                          "nor a file")
    out = []
    for mid in sorted(fits):
        learner = OnlineMetaLearner(configs[mid])
        learner.load_weights(latest[mid]["weights"])
        mine = learner.task_batch(own[mid], own[mid].tasks_with(learner.points_per_task)[-TASKS:])
        theirs = learner.task_batch(target_tasks, target_tasks.tasks_with(learner.points_per_task)[-TASKS:])
        if mine is None or theirs is None:
            continue  # too few points per task for this model's shots and ways
        out.append(Nearby(mid, latest[mid]["version"], configs[mid]["algo"], similarity(learner.champion, theirs, mine),
                          len(mine.support_x)))
    if not out:
        raise ConfigError(f"no published model fits {target!r}: none takes its features, or its tasks hold too few rows "
                          "per class for the models' shots (support and query: 2 x shots per class)")
    return sorted(out, key=lambda n: -n.similarity)
