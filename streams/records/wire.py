"""The records a worker writes (ModelVersion, DecisionEvent, DeadLetter, ScoreRecord) and the typed vocabulary
of its decisions: code compares :class:`DecisionType` and :class:`Cause`, never the human sentence
in ``reason``."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from schemas import codec_for

if TYPE_CHECKING:  # records stay free of torch: the scores are only read
    from learners.online import EraScore

MAX_DEAD_LETTER_MESSAGE = 2000
MAX_DEAD_LETTER_ORIGINAL = 256 * 1024  # well under any producer's request limit (Kafka's default is 1 MiB)
MAX_DEAD_LETTER_KEY = 1024


class DecisionType(str, Enum):
    """``DecisionEvent.event_type``."""

    DRIFT_DETECTED = "DriftDetected"
    FORGETTING_DETECTED = "ForgettingDetected"
    UPDATE_STARTED = "UpdateStarted"
    VERSION_PUBLISHED = "VersionPublished"
    VERSION_REJECTED = "VersionRejected"
    ROLLED_BACK = "RolledBack"
    SEARCH_STARTED = "SearchStarted"
    SEARCH_FINISHED = "SearchFinished"
    ROLLOUT_STARTED = "RolloutStarted"
    ROLLOUT_ADVANCED = "RolloutAdvanced"
    ROLLOUT_PROMOTED = "RolloutPromoted"
    CHALLENGER_QUEUED = "ChallengerQueued"
    ROLLOUT_REQUESTED = "RolloutRequested"
    PROMOTE_REQUESTED = "PromoteRequested"
    ROLLBACK_REQUESTED = "RollbackRequested"
    AB_TEST_REQUESTED = "ABTestRequested"
    AB_TEST_STARTED = "ABTestStarted"
    AB_TEST_FINISHED = "ABTestFinished"
    DIAGNOSIS_MADE = "DiagnosisMade"
    REMEDIATION_TAKEN = "RemediationTaken"
    SHADOW_CHALLENGED = "ShadowChallenged"  # a shadow candidate beat the champion on the same incoming tasks
    CHAMPION_SWITCHED = "ChampionSwitched"  # ... went through the gate: the model's learner is now that shadow's
    MODEL_CREATED = "ModelCreated"  # the new-models policy adopted a model id (and chose where it starts)
    REQUEST_REFUSED = "RequestRefused"  # an operator's request the worker did not act on: unsigned or not trusted
    ALIAS_SET = "AliasSet"  # a user-defined alias of the registry now names a version (label.key)
    TAG_SET = "TagSet"  # a tag of a version (label.key = label.value; an empty value removes it)
    REGIME_RECOGNISED = "RegimeRecognised"  # a drift led back to a regime a mixture's component already serves
    COMPONENT_RETIRED = "ComponentRetired"  # a mixture at its budget merged or retired a component to spawn one
    WORKER_RESTARTED = "WorkerRestarted"  # a worker started where its predecessor stopped without a clean shutdown
    MEMBER_LOST = "MemberLost"  # a peer left the group without handing over: this worker took its partitions
    DIAGNOSIS_CLEARED = "DiagnosisCleared"  # a diagnosis's signal is back within its bound: healed


class RolloutStage(str, Enum):
    """``ModelVersion.rollout_stage``: where a version stood when it was published. A worker that rolls
    versions out publishes a ``CANDIDATE`` (its stages after that are decision events on ``events``:
    :func:`~streams.records.aliases.version_stages` reads them back); without rollouts a version is
    served at once, ``PRODUCTION``."""

    CANDIDATE = "CANDIDATE"
    CANARY = "CANARY"
    PRODUCTION = "PRODUCTION"
    ROLLED_BACK = "ROLLED_BACK"


class Cause(str, Enum):
    """``DecisionEvent.cause``: what triggered an update, or why a candidate went the way it did."""

    OTHER = "other"
    DRIFT = "drift"
    NEW_TASKS = "new_tasks"
    SCHEDULE = "schedule"
    PREEMPTED = "preempted"
    TOO_FEW_TASKS = "too_few_tasks"
    WORSE_THAN_CHAMPION = "worse_than_champion"
    FORGETTING = "forgetting"
    REMEDIATED = "remediated"
    SCORE_TREND = "score_trend"  # the champion's held-out error trends up
    SEARCH = "search"  # a candidate found by a hyperparameter search
    FIRST_VERSION = "first_version"  # no champion yet: the first version is one
    SEQUENTIAL_TEST = "sequential_test"  # the always-valid comparison decided
    HELDOUT_TEST = "heldout_test"  # the worker's own paired comparison on fresh tasks found the canary worse
    LATENCY_GUARDRAIL = "latency_guardrail"
    ERROR_GUARDRAIL = "error_guardrail"
    NO_EVIDENCE = "no_evidence"  # the stage saw too few reported losses in its time: the gate's verdict stands
    OPERATOR = "operator"  # a person asked for it
    SUPERSEDED = "superseded"  # a newer candidate (a drift update) replaced the canary
    DECIDED = "decided"
    INCONCLUSIVE = "inconclusive"
    RETRAIN = "retrain"  # the remedies a diagnosis takes (and what triggered their updates)
    DISTIL = "distil"
    SHRINK = "shrink"
    QUARANTINE = "quarantine"
    ALERT = "alert"
    STUCK = "stuck"  # every candidate rejected for a while
    QUARANTINED = "quarantined"  # an agent's experiences refused while it is in quarantine
    SHADOW = "shadow"  # a shadow candidate's challenge
    COLD_START = "cold_start"  # a new agent type's start
    UNAUTHORISED = "unauthorised"  # a request without a trusted operator's signature
    RECURRENCE = "recurrence"  # a regime that came back, routed to the component that learned it
    BUDGET = "budget"  # a mixture's components held to their budget
    CRASH = "crash"  # a worker process ended without a clean shutdown
    REBALANCE = "rebalance"  # the consumer group moved partitions


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RolloutPosition:
    """``DecisionEvent.rollout``: the stage a rollout is at and the canary's share of agents (percent)."""

    stage: int
    share: float

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> "RolloutPosition | None":
        """The position an event states (records written before schema v5 kept it in ``figures``)."""
        if event.get("rollout") is not None:
            return cls(int(event["rollout"]["stage"]), float(event["rollout"]["share"]))
        figures = event.get("figures") or {}
        return cls(int(figures["stage"]), float(figures["share"])) if "share" in figures and "stage" in figures else None


@dataclass(frozen=True)
class ABTestSpec:
    """``DecisionEvent.ab_test``: an A/B test of versions ``a`` and ``b``, ``split`` percent of agents on ``b``."""

    a: int
    b: int
    split: float = 50.0

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> "ABTestSpec | None":
        """The test an event states (records written before schema v5 kept it in ``figures``)."""
        if event.get("ab_test") is not None:
            spec = event["ab_test"]
            return cls(int(spec["a"]), int(spec["b"]), float(spec["split"]))
        figures = event.get("figures") or {}
        return cls(int(figures["a"]), int(figures["b"]), float(figures.get("split", 50.0))) if "a" in figures and "b" in figures \
            else None


def decision_record(event_type: DecisionType, cause: Cause, model_id: str, reason: str, figures: Mapping[str, float],
                    version: int | None = None, agent_id: str | None = None, *, rollout: RolloutPosition | None = None,
                    ab_test: ABTestSpec | None = None, drop_challenger: bool = False,
                    label: tuple[str, str] | None = None, rule: str = "") -> dict[str, Any]:
    """A DecisionEvent as the record its reader sees (what :func:`decision` encodes). ``figures``
    are measurements; what a decision *sets* (a rollout's stage and share, an A/B test's versions)
    travels in its own typed fields."""
    return {"event_type": event_type.value, "cause": cause.value, "model_id": model_id, "version": version,
            "timestamp_ms": now_ms(), "reason": reason, "figures": {k: float(v) for k, v in figures.items()},
            "agent_id": agent_id, "rollout": None if rollout is None else asdict(rollout),
            "ab_test": None if ab_test is None else asdict(ab_test), "drop_challenger": drop_challenger,
            "signature": b"", "key_id": "", "label": None if label is None else {"key": label[0], "value": label[1]}, "rule": rule}


Decide = Callable[[dict[str, Any]], Awaitable[None]]  # a worker's way to make a decision: the record, sent on events


def decision(event_type: DecisionType, cause: Cause, model_id: str, reason: str, figures: Mapping[str, float],
             version: int | None = None, agent_id: str | None = None, **typed: Any) -> bytes:
    """:func:`decision_record`, encoded (``typed``: its keyword-only fields)."""
    return codec_for("DecisionEvent").encode(decision_record(event_type, cause, model_id, reason, figures, version, agent_id,
                                                             **typed))


def model_version(model_id: str, version: int, parent: int | None, algorithm: str, weights: bytes, config: dict[str, Any],
                  metrics: Mapping[str, float], lineage: list[dict[str, Any]], era_points: Mapping[int, EraScore] | None = None,
                  stage: RolloutStage = RolloutStage.PRODUCTION, signer: Any = None, recipe: str = "") -> bytes:
    """A ModelVersion; signed when a :class:`~streams.records.signing.Signer` is given."""
    record = {
        "model_id": model_id, "version": version, "parent_version": parent, "algorithm": algorithm,
        "created_at_ms": now_ms(), "weights": weights, "sha256": hashlib.sha256(weights).hexdigest(),
        "config_json": json.dumps(config, sort_keys=True), "metrics": {k: float(v) for k, v in metrics.items()},
        "lineage": lineage, "rollout_stage": RolloutStage(stage).value,
        "era_points": [{"era": int(e), "points": float(s.points)} for e, s in sorted((era_points or {}).items())],
        "era_halves": [{"era": int(e), "select": float(s.select), "held": float(s.held)} for e, s in sorted((era_points or {}).items())],
        "signature": b"", "key_id": "", "recipe_json": recipe,
    }
    if signer is not None:
        record.update(signer.sign(record))
    return codec_for("ModelVersion").encode(record)


def score_record(model_id: str, partition: int, offset: int, task_ids: list[str], losses) -> bytes:
    """A ScoreRecord: the losses fed to a model's drift detector after the experience message at
    ``partition``/``offset`` (replayed there on restart)."""
    return codec_for("ScoreRecord").encode({
        "model_id": model_id, "source_partition": partition, "source_offset": offset, "task_ids": list(task_ids),
        "losses": [float(v) for v in losses], "timestamp_ms": now_ms()})


def dead_letter(original: Any, key: bytes | None, topic: str, partition: int, offset: int, kind: str, message: str) -> bytes:
    """A DeadLetter keeping the original bytes (anything else as its repr), where it came from and why.

    It always fits in a producer request: an original over ``MAX_DEAD_LETTER_ORIGINAL`` keeps its first
    bytes with its length and SHA-256 (``truncated``); the source offset finds the whole on the log.

    >>> from schemas import codec_for
    >>> letter = codec_for("DeadLetter").decode(dead_letter(b"x" * 5_000_000, b"k", "experiences", 0, 7, "too_large", "big"))
    >>> letter["truncated"], letter["original_length"], len(letter["original"]) == MAX_DEAD_LETTER_ORIGINAL
    (True, 5000000, True)
    """
    body = bytes(original) if isinstance(original, (bytes, bytearray, memoryview)) else repr(original).encode()
    key = bytes(key) if key is not None else None
    return codec_for("DeadLetter").encode({
        "original": body[:MAX_DEAD_LETTER_ORIGINAL], "original_length": len(body),
        "original_sha256": hashlib.sha256(body).hexdigest(), "truncated": len(body) > MAX_DEAD_LETTER_ORIGINAL,
        "original_key": key[:MAX_DEAD_LETTER_KEY] if key is not None else None, "source_topic": topic,
        "source_partition": partition, "source_offset": offset, "error_kind": kind,
        "message": message[:MAX_DEAD_LETTER_MESSAGE], "timestamp_ms": now_ms()})
