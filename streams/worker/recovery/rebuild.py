"""Rebuild a worker's derived state from the log before it consumes: the latest published
version of each model (read from ``models``, with each era's best score from its ``era_points``),
and buffers, detectors, eras, probes and de-duplication state (replaying ``experiences`` up to
the group's committed offsets through the ingest path, with the scores and buffer shrinks the log
recorded: ``log_replay.py``), from the start or from the newest snapshot the log still agrees
with (``snapshots.py``).

A worker rebuilds at its first partition assignment, and again for the models it gains when the
group rebalances (another worker died or left): then only those models, from their partitions."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from streams.worker.ingest import Ingestor
from streams.settings import Settings
from streams.worker.state import ModelState
from streams.worker.state import WorkerState
from streams.worker.recovery.log_replay import ScoreLog, quarantines_from, replay_experiences, shrinks_from
from streams.worker.recovery.snapshots import SnapshotStore, restore
from streams.kafka.topics import committed_offsets, read_records
from learners.online import EraScore
from streams.records.wire import DecisionType

log = logging.getLogger("metastream.rebuild")


def _adopt_again(state: WorkerState, ingestor: Ingestor, version_records: list[dict]) -> None:
    """The models the new-models policy adopted before a restart (they have published versions)."""
    for mid in dict.fromkeys(rec["model_id"] for rec in version_records):
        if mid not in state.models:
            try:
                ingestor.adopt(mid)
            except Exception as exc:  # noqa: BLE001 - over the cap: its experiences are dead-lettered as they come
                log.warning("not adopting %s again: %s", mid, exc)


def recorded_scores(rec: dict) -> dict[int, EraScore]:
    """A published version's era scores as its record carries them; all probes for both halves
    where the record has no halves (written before they were)."""
    halves = {h["era"]: h for h in rec.get("era_halves", [])}
    return {e["era"]: EraScore(e["points"], halves[e["era"]]["select"], halves[e["era"]]["held"]) if e["era"] in halves
            else EraScore.same(e["points"]) for e in rec["era_points"]}


def _load_versions(state: WorkerState, models: set[str], version_records: list[dict]) -> int:
    """Each model's published versions (those whose weights match their hash): the newest is the
    version it goes on from. Returns how many were loaded."""
    versions = 0
    for rec in version_records:
        model = state.models.get(rec["model_id"]) if rec["model_id"] in models else None
        if model is None or rec["version"] <= model.version:
            continue
        if hashlib.sha256(rec["weights"]).hexdigest() != rec["sha256"]:
            continue  # never load what does not match its hash
        model.remember(rec["version"], rec["weights"], _config(rec))
        model.version = rec["version"]
        model.guard.record(rec["version"], recorded_scores(rec), rec["parent_version"])
        model.cold_start_pending = False  # a published version: where it started was decided
        versions += 1
    return versions


async def rebuild_state(state: WorkerState, ingestor: Ingestor, settings: Settings, bootstrap: str,
                        models: set[str] | None = None, partitions: set[int] | None = None,
                        snapshots: SnapshotStore | None = None) -> dict[str, int]:
    """Rebuild ``models`` (default: all the worker holds, from their initial state) by replaying
    ``partitions`` of experiences (default: all), from the newest usable snapshot in ``snapshots``
    if there is one. Returns counts of what was replayed."""
    first = models is None
    version_records = [rec for _, rec in await read_records(bootstrap, settings.topics.models, "ModelVersion")]
    if first and settings.catalog.new_models:  # models the new-models policy adopted before this worker (re)started
        _adopt_again(state, ingestor, version_records)
    models = set(state.models) if models is None else models & set(state.models)
    stops = await committed_offsets(bootstrap, settings.topics.experiences, settings.broker.app_id)
    if partitions is not None:
        stops = {p: end for p, end in stops.items() if p in partitions}
    snapshot = None
    if snapshots is not None and (first or not state.quota.enabled):  # quotas are the worker's: whole only
        snapshot = await snapshots.usable(set(stops), stops, settings, bootstrap, state.configs)
    if snapshot is not None:
        for mid in restore(state, snapshot, models, first):
            ingestor.metrics.ingested.labels(mid).inc(state.models[mid].dedup.counted)
            ingestor.metrics.duplicates.labels(mid).inc(state.models[mid].dedup.duplicates)
    ends: dict[int, int] = {}
    events = []
    for msg, event in await read_records(bootstrap, settings.topics.events, "DecisionEvent"):  # aliases and rollout stages
        events.append(event)
        ends[msg.partition] = max(ends.get(msg.partition, 0), msg.offset + 1)
        model = state.models.get(event["model_id"]) if event["model_id"] in models else None
        if model is not None:
            model.aliases.apply(event)
            if event["event_type"] == DecisionType.REGIME_RECOGNISED.value:  # that era's drift is answered: once
                figures = event["figures"]
                model.guard.recognised_era = max(model.guard.recognised_era, int(figures.get("era", -1)))
                if "like_era" in figures:  # an update's judgement: the era's regime is checked on the earlier era's probes
                    model.guard.fold(int(figures["era"]), int(figures["like_era"]))
    versions = _load_versions(state, models, version_records)
    for model in (state.models[m] for m in models):
        _learn_on_from(model)
    # operators' requests already on the log: a group that committed none would be handed them
    # all again; what it read here is history, not a request to act on
    if first:
        committed = await committed_offsets(bootstrap, settings.topics.events, settings.broker.app_id)
        state.request_floor = {p: end for p, end in ends.items() if not committed.get(p)}
    scores = await ScoreLog.read(bootstrap, settings.topics.scores, first=snapshot.score_starts if snapshot else None)
    shrinks = [s for s in shrinks_from(events) if snapshot is None or s.at_ms > snapshot.taken_ms]  # the rest it holds
    # a model this worker already holds, misrouted onto a partition it gains, is not part of what is rebuilt
    messages = await replay_experiences(state, ingestor, bootstrap, settings.topics.experiences, stops, scores,
                                        shrinks, models, only_keys=not first, starts=snapshot.positions if snapshot else None,
                                        quarantines=quarantines_from(events))
    for model in (state.models[m] for m in models):
        model.new_tasks = 0
    return {"versions": versions, "messages": messages, "from_snapshot": int(snapshot is not None)}


def _config(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The learner config a version was published with (None when its record holds none)."""
    try:
        config = json.loads(rec["config_json"])
    except (TypeError, ValueError):
        return None
    return config if isinstance(config, dict) and config else None


def _learn_on_from(model: ModelState) -> None:
    """Load the version the live worker learned on from: the newest, or the champion when the
    newest was rolled back; with its own config. A version that does not load is skipped for
    the one before it (the version number still counts on from the newest)."""
    aliases = model.aliases
    first = model.version
    if aliases.champion in model.published and model.version not in {aliases.champion, aliases.canary, aliases.challenger}:
        first = aliases.champion  # the live worker reverted to the champion after rolling the newest back
    for version in [first, *sorted((v for v in model.published if v != first), reverse=True)]:
        try:
            if model.load_version(version):
                return
        except Exception as exc:  # noqa: BLE001 - a record from the log must not stop the worker
            log.warning("%s v%s does not load (%s: %s): trying the version before it", model.model_id, version,
                        type(exc).__name__, exc)
