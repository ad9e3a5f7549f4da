"""New agent types: with ``METASTREAM_NEW_MODELS`` set, a worker adopts a model id it was not told
about when the id matches a pattern, with the pattern's template as its config (a preset, a
preset with arguments, a model folder or a config); without it, or for an id no pattern matches,
such experiences still go to the dead-letter topic as ``unknown_model``. The worker that holds the
id's home partition adopts it (the others dead-letter it as ``not_owned``, as for any model), at
most ``METASTREAM_NEW_MODELS_MAX`` of them. When its first tasks are scored the newcomer takes the
weights of the most similar compatible model (``learners/transfer/cold_start.py``); the choice
is a ``ModelCreated`` event and stays in the newcomer's config, which its versions carry."""

from __future__ import annotations

import logging

from learners.online import OnlineMetaLearner
from learners.transfer.cold_start import Candidate, WarmStart, choose_warm_start, compatible

from streams.records.wire import Cause, DecisionType, decision_record
from streams.settings import Settings
from streams.worker.state import ModelState
from streams.worker.state import WorkerState
from streams.worker.state import home_partition

log = logging.getLogger("metastream.new_models")

OWN_TASKS = 16  # recent tasks of a candidate encoded for the comparison


def adopt(state: WorkerState, settings: Settings, model_id: str) -> ModelState | None:
    """Take ``model_id`` on when a pattern matches it and this worker holds its home partition;
    the model's state (fresh), or ``None``."""
    config = settings.new_model_config(model_id)
    if config is None or len(state.adopted) >= settings.catalog.new_models_max:
        return None
    state.configs[model_id] = config
    state.adopted.add(model_id)
    own = state.ownership
    if own.assigned_once and home_partition(model_id, own.partitions) not in own.assigned:
        return None  # another worker's to adopt
    if model_id not in state.models:
        state.models[model_id] = state.fresh_model(model_id)
        state.models[model_id].cold_start_pending = True
        own.owned.add(model_id)
        log.info("adopted new model %s", model_id)
    return state.models[model_id]


def warm_start(state: WorkerState, newcomer: ModelState, task_ids: list[str]) -> WarmStart:
    """Choose where ``newcomer`` starts from its first ``task_ids`` and load those weights."""
    newcomer.cold_start_pending = False
    first = newcomer.learner.task_batch(newcomer.buffer, task_ids)
    candidates = []
    for mid, other in state.models.items():
        kept = other.published.get(other.version)
        if mid == newcomer.model_id or kept is None or first is None:
            continue
        config = kept.config or other.learner.config
        if not compatible(config, newcomer.learner.config):
            continue
        learner = OnlineMetaLearner(config)
        learner.load_weights(kept.weights)
        own = learner.task_batch(other.buffer, other.buffer.tasks_with(learner.points_per_task)[-OWN_TASKS:])
        if own is not None:
            candidates.append(Candidate(mid, other.version, learner.champion, own))
    choice = choose_warm_start(first, candidates) if first is not None else WarmStart(None)
    if choice.model_id is not None:
        newcomer.learner.load_weights(state.models[choice.model_id].published[choice.version].weights)
    newcomer.learner.config["warm_start"] = choice.record()
    return choice


async def announce_cold_start(ctl, model_id: str, choice: WarmStart) -> None:
    """The ``ModelCreated`` event: where the new model starts, with every candidate's similarity."""
    figures = {f"similarity_{mid}": value for mid, value in choice.similarities.items()}
    if choice.model_id is None:
        reason = "no model of the same learner and architecture has a published version: it starts from its initialisation"
    else:
        figures.update(similarity=choice.similarity, source_version=float(choice.version))
        reason = f"starts from {choice.model_id} v{choice.version}, the most similar by task encoding ({choice.similarity:.3f})"
    await ctl.decide(decision_record(
        DecisionType.MODEL_CREATED, Cause.COLD_START, model_id, f"new model {model_id}: {reason}", figures, None))
