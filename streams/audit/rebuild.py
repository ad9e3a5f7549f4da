"""``metastream audit rebuild MODEL VERSION``: re-run the update that made a version, from the log
alone, and check that its weights come out byte-identical.

The version's recipe (``recipe.py``) names the job's seed, the version it started from, its plan
and guard, and where the worker stood on the log. The buffer the update read is rebuilt by
replaying the experiences of the version's lineage up to those positions through the worker's own
ingest path (``log_replay.py``, with the scores and shrinks in force then); the starting weights
come from the models topic; the update runs in an update process like the worker's. Each input is compared with the
digest the version recorded, so a rebuild that differs says where: the starting weights, the
buffer, the probes, the era, or (all inputs equal) the update itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from learners.online import OnlineMetaLearner, TaskReplayBuffer

from streams.audit.trail import NotOnTheLog
from streams.worker.ingest import Ingestor
from streams.worker.recovery.log_replay import ScoreLog, quarantines_from, replay_experiences, shrinks_from
from streams.worker.metrics import WorkerMetrics
from streams.worker.learning.recipe import Recipe, probes_digest, tasks_digest
from streams.settings import Settings
from streams.worker.state import WorkerState
from streams.kafka.topics import read_records
from streams.worker.learning.process import Outcome, UpdateJob, run_update, update_executor


class NoRecipe(LookupError):
    """The version records no recipe (published before ModelVersion v4, or not by an update)."""


@dataclass
class RebuildReport:
    model_id: str
    version: int
    identical: bool = False
    expected_sha256: str = ""
    rebuilt_sha256: str = ""
    differences: list[str] = field(default_factory=list)  # what differs, input by input
    messages: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def rebuild_version(bootstrap: str, model_id: str, version: int, settings: Settings | None = None,
                          executor: ProcessPoolExecutor | None = None) -> RebuildReport:
    """Re-run the update that made ``model_id`` v``version``; the update runs in ``executor`` (an
    :func:`~streams.worker.learning.process.update_executor`, like the worker's; by default a new one)."""
    settings = settings or Settings.from_env()
    started = time.perf_counter()
    versions = {rec["version"]: rec for _, rec in await read_records(bootstrap, settings.topics.models, "ModelVersion")
                if rec["model_id"] == model_id}
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions)[-10:]) or "none"
        raise NotOnTheLog(f"{model_id} v{version} is not on the models topic (latest versions: {known})")
    record = versions[version]
    if not record.get("recipe_json"):
        raise NoRecipe(f"{model_id} v{version} records no recipe (published before ModelVersion v4): it cannot be re-run")
    recipe = Recipe.from_json(record["recipe_json"])
    report = RebuildReport(model_id, version, expected_sha256=record["sha256"])
    if recipe.shadow is not None:
        report.differences.append(f"it started from shadow candidate {recipe.shadow['name']!r}, whose weights (sha256 "
                                  f"{recipe.shadow['weights_sha256'][:12]}) live only in the worker that trained it, not on the "
                                  "log: a champion switch cannot be re-run; the versions after it can")
        return _done(report, started)

    weights = await _starting_weights(bootstrap, settings, recipe, versions, report)
    if weights is None:
        return _done(report, started)
    job = await _replayed_job(bootstrap, settings, model_id, recipe, record, weights, report)
    await _rerun(job, executor, record, report)
    return _done(report, started)


async def _starting_weights(bootstrap: str, settings: Settings, recipe: Recipe, versions: dict[int, dict],
                            report: RebuildReport) -> bytes | None:
    """The weights the update started from, as the worker serialised them for the job (``None``: not on the log)."""
    learner = OnlineMetaLearner(recipe.config)
    if recipe.weights_from:
        parent = versions.get(recipe.weights_from)
        if parent is None:
            report.differences.append(f"the version it started from (v{recipe.weights_from}) is not on the models topic")
            return None
        learner.load_weights(parent["weights"])
    elif (start := recipe.config.get("warm_start") or {}).get("model_id"):  # a new model's first update: it started
        source = [rec for _, rec in await read_records(bootstrap, settings.topics.models, "ModelVersion")  # from another
                  if rec["model_id"] == start["model_id"] and rec["version"] == start["version"]]
        if not source:
            report.differences.append(f"the model it started from ({start['model_id']} v{start['version']}) is not on the models topic")
            return None
        learner.load_weights(source[0]["weights"])
    weights = learner.weights_bytes()
    if hashlib.sha256(weights).hexdigest() != recipe.weights_sha256:
        report.differences.append(f"starting weights (v{recipe.weights_from or 'initial'}) differ from those the update started from"
                                  + (" (a model folder's weights are not on the log)" if recipe.config.get("checkpoint") else ""))
    return weights


async def _replayed_job(bootstrap: str, settings: Settings, model_id: str, recipe: Recipe, record: dict, weights: bytes,
                        report: RebuildReport) -> UpdateJob:
    """The update job again: its buffer, probes and era replayed from the lineage through the ingest path."""
    replay = dict(recipe.replay)
    run_settings = Settings.from_env(models={model_id: recipe.config}, **replay)
    state = WorkerState.from_settings(run_settings)
    model = state.models[model_id]
    model.buffer = TaskReplayBuffer(recipe.buffer["max_bytes"], recipe.buffer["max_points_per_task"])
    ingestor = Ingestor(state, run_settings, WorkerMetrics())
    events = [rec for _, rec in await read_records(bootstrap, settings.topics.events, "DecisionEvent")]
    scores = await ScoreLog.read(bootstrap, settings.topics.scores)
    stops = {r["partition"]: min(r["end_offset"] + 1, recipe.positions.get(r["partition"], r["end_offset"] + 1))
             for r in record["lineage"] if r["topic"] == settings.topics.experiences}
    report.messages = await replay_experiences(state, ingestor, bootstrap, settings.topics.experiences, stops, scores,
                                               shrinks_from(events), {model_id}, only_keys=True, until_ms=recipe.at_ms,
                                               quarantines=quarantines_from(events))
    snapshot = model.buffer.snapshot()
    if snapshot.digest() != recipe.buffer["sha256"]:
        report.differences.append(f"the rebuilt replay buffer ({snapshot.num_tasks} tasks) differs from the one the update read")
    if recipe.guard is not None:
        if probes_digest(model.guard.probes) != recipe.probes_sha256:
            report.differences.append("the forgetting guard's probe tasks differ")
        if model.drift.era != recipe.guard["era"]:
            report.differences.append(f"the era differs: {model.drift.era} rebuilt, {recipe.guard['era']} recorded")

    old_tasks = model.guard.old_tasks(snapshot.task_ids(), model.drift.era)
    if recipe.guard is not None and tasks_digest(old_tasks) != recipe.old_tasks_sha256:
        report.differences.append(f"the guard's anchors (buffered tasks of earlier eras: {len(old_tasks)} rebuilt) differ")
    return recipe.job_for(weights, snapshot, model.guard.probes, old_tasks, model.drift.era)


async def _rerun(job: UpdateJob, executor: ProcessPoolExecutor | None, record: dict, report: RebuildReport) -> None:
    """The update itself, in an update process; its weights and held-out scores against the record's."""
    own = executor is None
    executor = executor or update_executor(1)
    try:
        result = await asyncio.get_running_loop().run_in_executor(executor, run_update, job)
    finally:
        if own:
            executor.shutdown()
    if result.outcome is not Outcome.PROPOSED or result.proposal is None:
        report.differences.append(f"the update ended {result.outcome.value} instead of proposing a candidate")
        return
    report.rebuilt_sha256 = hashlib.sha256(result.proposal.weights).hexdigest()
    report.identical = report.rebuilt_sha256 == report.expected_sha256
    proposal, figures = result.proposal, record["metrics"]
    for name, value in (("champion", proposal.champion_score), ("candidate", proposal.candidate_score)):
        recorded = figures.get(f"{name}_mse", figures.get(f"{name}_accuracy"))
        if recorded is not None and float(recorded) != float(value):
            report.differences.append(f"the {name}'s held-out score differs: {value!r} rebuilt, {recorded!r} recorded")
    if not report.identical and not report.differences:
        report.differences.append("every input matched the recipe, yet the update computes other weights than those published "
                                  "(weights altered after the update, or a kernel that is not deterministic here)")
    elif not report.identical:
        report.differences.append("so the weights differ")


def _done(report: RebuildReport, started: float) -> RebuildReport:
    report.seconds = time.perf_counter() - started
    return report
