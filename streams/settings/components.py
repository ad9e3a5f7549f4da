"""The worker's settings, one small frozen object per component: what the broker connection and
topics are, how the process is reached, what ingest keeps, how drift is scored, how updates train,
what the forgetting guard allows, when searches and shadows run, how versions roll out, how the
worker diagnoses itself, where snapshots go, how versions are signed and which models it serves.

Each field is one ``METASTREAM_*`` variable (the component's ``PREFIX`` and the field's name,
unless the field names its own), with one default, a line saying what it does and what it
accepts (``checks.Bound``, ``choices``); ``worker.py`` reads them all once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

from streams.catalog.presets import served, sine_model
from streams.kafka.retention import forever, kept_for
from streams.settings.checks import Bound
from streams.worker.rollout.policy import RolloutRules


def setting(default: Any, doc: str, *, bound: Bound = Bound.ANY, choices: tuple[str, ...] = (),
            variable: str | None = None) -> Any:
    """A field with its default, its line of documentation, what it accepts and (when the
    component's prefix does not give it) the variable's name after ``METASTREAM_``."""
    meta = {"doc": doc, "bound": bound, "choices": choices, "variable": variable}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


ONE = Bound.AT_LEAST_ONE


@dataclass(frozen=True)
class BrokerSettings:
    """Where the Kafka cluster is and how the worker's topics are created there."""

    PREFIX: ClassVar[str] = ""
    bootstrap: str | None = setting(None, "bootstrap servers; unset starts the embedded broker", variable="KAFKA")
    app_id: str = setting("metastream", "Faust app id and consumer group")
    partitions: int = setting(4, "partitions of the topics the worker creates", bound=ONE)
    replication_factor: int = setting(1, "replicas of each topic the worker creates (3 on a production cluster)", bound=ONE)
    min_insync_replicas: int = setting(1, "min.insync.replicas of the topics the worker creates: with acks=all a write "
                                          "needs this many copies (2 with 3 replicas)", bound=ONE)
    rebalance_timeout_s: float = setting(3.0, "consumer-group rebalance timeout, seconds")


@dataclass(frozen=True)
class TopicSettings:
    """The names of the five topics (``METASTREAM_<NAME>_TOPIC``)."""

    PREFIX: ClassVar[str] = ""
    SUFFIX: ClassVar[str] = "_TOPIC"
    experiences: str = setting("experiences", "topic agents publish ExperienceBatch records to")
    models: str = setting("models", "topic of published ModelVersion records")
    events: str = setting("events", "topic of DecisionEvent records (the audit trail)")
    dlq: str = setting("experiences.dlq", "dead letters: what could not be used, with the reason")
    scores: str = setting("scores", "ScoreRecord: the losses fed to the drift detectors, replayed on restart")
    experiences_retention_days: float = setting(0.0, "days the experiences and dead-letter topics keep their records "
                                                     "(retention.ms of the topics the worker creates); 0 keeps them "
                                                     "forever, which `metastream audit rebuild` of any version needs",
                                                variable="EXPERIENCES_RETENTION_DAYS")

    max_message_mb: int = setting(64, "largest record the worker writes, in MiB: its producer's max request size and "
                                      "the models topic's max.message.bytes (a version carries its weights)",
                                  bound=ONE, variable="MAX_MESSAGE_MB")

    @property
    def all(self) -> list[str]:
        return [self.experiences, self.models, self.events, self.dlq, self.scores]

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 2**20

    def configs(self) -> dict[str, dict[str, str]]:
        """Each topic's configs when created: the registry, the decisions and the scores never
        expire; experiences and dead letters are kept ``experiences_retention_days``; the registry
        takes records of up to ``max_message_mb``."""
        timed = kept_for(self.experiences_retention_days)
        return {self.experiences: timed, self.models: {**forever(), "max.message.bytes": str(self.max_message_bytes)},
                self.events: forever(), self.dlq: timed, self.scores: forever()}

    def governed(self) -> dict[str, str]:
        """The topics whose retention a setting chooses, and that setting's variable."""
        variable = "METASTREAM_EXPERIENCES_RETENTION_DAYS"
        return {self.experiences: variable, self.dlq: variable}


@dataclass(frozen=True)
class ProcessSettings:
    """How the worker process is reached (metrics, status page) and how many threads torch takes."""

    PREFIX: ClassVar[str] = ""
    metrics_port: int = setting(9108, "Prometheus endpoint port; 0 turns it off", bound=Bound.PORT)
    metrics_host: str = setting("127.0.0.1", "address the metrics endpoint binds (0.0.0.0 in a container)")
    web_port: int = setting(6066, "port of the status page (/status, Faust's web server); 0 turns it off", bound=Bound.PORT)
    web_host: str = setting("127.0.0.1", "address the status page binds (0.0.0.0 in a container)")
    torch_threads: int = setting(1, "torch threads of the worker (its models are small)", bound=ONE)
    access_token: str = setting("", "a secret the metrics endpoint and the status page require (Authorization: Bearer; "
                                    "the page also takes ?token=); empty: they are open", variable="ACCESS_TOKEN")


@dataclass(frozen=True)
class IngestSettings:
    """What one message may hold, what the replay buffer keeps and each agent's quota."""

    PREFIX: ClassVar[str] = ""
    buffer_mb: float = setting(32.0, "replay buffer bytes, shared by the models (MiB)")
    max_points_per_task: int = setting(40, "points kept per buffered task", bound=ONE)
    max_batch_rows: int = setting(4096, "most experiences one message may hold", bound=ONE)
    agent_rows_per_s: float = setting(0.0, "ingest quota of each agent, rows per second (bursts of 2 s); over it a "
                                           "message is dead-lettered as over_quota; 0: no quota")
    agent_bytes_per_s: float = setting(0.0, "ingest quota of each agent, message bytes per second; 0: no quota")


@dataclass(frozen=True)
class DriftSettings:
    """How new tasks are scored for the drift detectors."""

    PREFIX: ClassVar[str] = "DRIFT_"
    detector: str = setting("adwin", "adwin or pagehinkley", choices=("adwin", "pagehinkley"))
    group: int = setting(16, "most tasks scored together for the drift signal (one batched adaptation, whose cost "
                             "is mostly per call)", bound=ONE)
    window_s: float = setting(0.25, "a task with enough points waits at most this long to be scored, seconds")
    steps: int = setting(3, "adaptation steps of that score", bound=ONE)
    tasks_per_s: float = setting(200.0, "most tasks scored per second (a sample at high rates)")


@dataclass(frozen=True)
class UpdateSettings:
    """When a model updates and how an update trains: the worker's defaults, which a model's config
    overrides in its ``update`` section (:meth:`for_model`)."""

    PREFIX: ClassVar[str] = ""
    new_tasks_trigger: int = setting(200, "meta-update after this many new tasks", bound=ONE)
    schedule_s: float = setting(0.0, "meta-update at least this often, seconds (0: never on a timer)")
    iterations: int = setting(150, "meta-iterations of a routine update", bound=ONE, variable="UPDATE_ITERATIONS")
    meta_batch: int = setting(16, "tasks per meta-iteration", bound=ONE, variable="UPDATE_META_BATCH")
    recent: int = setting(64, "a routine update draws part of each meta-batch from this many newest tasks", bound=ONE,
                          variable="UPDATE_RECENT")
    share: float = setting(0.5, "... this share of it (the rest is replay from the whole buffer)", bound=Bound.FRACTION,
                           variable="UPDATE_SHARE")
    drift_iterations: int = setting(50, "meta-iterations of a drift update: an answer now, routine ones refine it",
                                    bound=ONE, variable="DRIFT_UPDATE_ITERATIONS")
    drift_recent: int = setting(16, "a drift update draws most tasks from this many newest tasks", bound=ONE,
                                variable="DRIFT_UPDATE_RECENT")
    drift_share: float = setting(0.75, "... this share of each meta-batch (the rest is replay)", bound=Bound.FRACTION,
                                 variable="DRIFT_UPDATE_SHARE")
    drift_retries: int = setting(3, "a drift update (or a distilled student) whose candidate is rejected is run "
                                    "again, on the tasks that came since, up to this many times (0: the next routine "
                                    "update answers the drift)")
    heldout_tasks: int = setting(64, "newest tasks held out to judge candidate against champion (a young buffer: a "
                                 "quarter of its tasks, at least 16)", bound=ONE)
    margin: float = setting(0.05, "a candidate is published unless worse than the champion by more than this "
                                  "(regression: relative MSE; classification: absolute accuracy)", bound=Bound.UP_TO_ONE)
    min_gap_s: float = setting(0.2, "routine updates of one model start at least this far apart, seconds",
                               variable="MIN_UPDATE_GAP_S")


@dataclass(frozen=True)
class GuardSettings:
    """The forgetting guard and the continual-learning terms it adds to a candidate's training: the
    worker's defaults, which a model's config overrides in its ``continual`` section."""

    PREFIX: ClassVar[str] = "GUARD_"
    enabled: bool = setting(True, "the forgetting guard; 0 turns it off (and distillation and EWC with it)", variable="GUARD")
    max_drop: float = setting(2.0, "points an old era may lose before a candidate is redone or rejected (the promise "
                                   "is 5 on fresh tasks; 3 are left for the probes' sampling error and reuse)")
    alpha: float = setting(0.0, "0: a drop counts above max_drop (the promise holds). Above 0: only when it exceeds "
                                "max_drop beyond the probes' noise, a paired test at this family-wise level over the eras "
                                "checked (more candidates pass where eras have few probes, at the cost of the promise)",
                           variable="GUARD_ALPHA")
    probes: int = setting(64, "held-out probe tasks kept per era", bound=ONE)
    distill: float = setting(1.0, "weight of the step keeping a candidate close to its parent on old tasks", variable="DISTILL")
    ewc: float = setting(1.0, "EWC strength in that step (Fisher of the parent on old eras' tasks); 0 turns it off",
                         variable="EWC")


@dataclass(frozen=True)
class SearchSettings:
    """When a model's hyperparameters are searched, and how hard."""

    PREFIX: ClassVar[str] = "SEARCH_"
    every_s: float = setting(0.0, "search each model's hyperparameters this often, seconds (0: never on a timer)")
    window: int = setting(16, "updates whose champion error make the trend", bound=ONE)
    trend: float = setting(0.05, "relative rise of that error (newer half of the window against the older) that "
                                 "starts a search")
    trend_t: float = setting(3.5, "how far that rise must stand above its noise (Welch's t of the halves' log errors)")
    trials: int = setting(6, "trials of a search in the update process", bound=ONE)
    iterations: int = setting(40, "meta-iterations of each trial (the winner trains as long as a routine update)", bound=ONE)
    cooldown_s: float = setting(60.0, "a model is searched at most this often, seconds")


@dataclass(frozen=True)
class ShadowSettings:
    """How shadow candidates are compared with the champion on incoming tasks."""

    PREFIX: ClassVar[str] = "SHADOW_"
    window: int = setting(64, "incoming tasks over which a model's shadow candidates and champion are compared", bound=ONE)
    margin: float = setting(0.02, "a shadow challenges the champion when its windowed reward (accuracy, or 1 - "
                                  "relative MSE / 4) is higher by this much")
    min_tasks: int = setting(32, "tasks a shadow must be scored on before it may challenge", bound=ONE)
    exploration: float = setting(0.5, "UCB exploration bonus that decides which shadow the next shadow update trains")


_RULES = RolloutRules()


@dataclass(frozen=True)
class RolloutSettings:
    """How a new version reaches the fleet: the staged rollout's rules (defaults in
    ``streams/worker/rollout/policy.py``: one default per setting) and A/B tests."""

    PREFIX: ClassVar[str] = "ROLLOUT_"
    enabled: bool = setting(True, "roll each new version out by cohorts (5% -> 25% -> 50% -> 100%); 0: every version "
                                  "is champion", variable="ROLLOUT")
    stages: tuple[float, ...] = setting(_RULES.stages, "the canary's share of agents at each stage, percent")
    alpha: float = setting(_RULES.alpha, "error level of the always-valid comparison of canary and champion",
                           bound=Bound.FRACTION)
    margin: float = setting(_RULES.margin, "a canary advances when worse than the champion by less than this share of "
                                           "its mean loss", bound=Bound.UP_TO_ONE)
    min_samples: int = setting(_RULES.min_samples, "canary observations (tasks agents reported losses of) a stage must "
                                                   "see before it advances", bound=ONE)
    patience: int = setting(_RULES.patience, "a stage with this many times rollout_min_samples observations and no "
                                             "significant harm advances, whatever the point estimate", bound=ONE)
    evidence_timeout_s: float = setting(_RULES.evidence_timeout_s, "a stage with fewer observations after this many "
                                                                   "seconds advances: the gate's verdict stands")
    latency_ratio: float = setting(_RULES.latency_ratio, "roll back when the canary's median prediction latency exceeds "
                                                         "the champion's this many times")
    error_margin: float = setting(_RULES.error_margin, "roll back when the canary's error rate exceeds the champion's "
                                                       "by this much", bound=Bound.UP_TO_ONE)
    ab_max_s: float = setting(600.0, "an A/B test that has not decided in this many seconds ends inconclusive",
                              variable="AB_MAX_S")

    def rules(self) -> RolloutRules:
        return RolloutRules(stages=self.stages, alpha=self.alpha, margin=self.margin, min_samples=self.min_samples,
                            patience=self.patience, evidence_timeout_s=self.evidence_timeout_s,
                            latency_ratio=self.latency_ratio, error_margin=self.error_margin)


@dataclass(frozen=True)
class DiagnosisSettings:
    """How often the worker diagnoses itself, from which rules, and what its remedies do."""

    PREFIX: ClassVar[str] = ""
    rules: str = setting("", "a JSON file of diagnosis rules; empty: the shipped streams/worker/diagnosis/rules.json",
                         variable="DIAGNOSIS_RULES")
    every_s: float = setting(2.0, "how often the rules are evaluated, seconds (0: never)", variable="DIAGNOSE_EVERY_S")
    quarantine_s: float = setting(300.0, "how long a quarantined agent's experiences are refused, seconds")
    distil_factor: float = setting(0.5, "a distilled student's width relative to the champion's (the slow-inference "
                                        "remedy)", bound=Bound.UP_TO_ONE)
    memory_mb: float = setting(0.0, "the worker's memory budget, MiB: the memory_pressure rule shrinks the replay buffers "
                                    "when the resident memory of the worker and its update processes passes 80% of it "
                                    "(0: the container's limit, else the machine's memory)")
    memory_limit_file: str = setting("", "a file that holds the worker's memory limit in bytes, as cgroup's memory.max "
                                         "does (a number, or 'max': none), read at every diagnosis, so a limit changed in "
                                         "place is honoured (empty: the container's cgroup files); METASTREAM_MEMORY_MB "
                                         "goes first when set")


@dataclass(frozen=True)
class SnapshotSettings:
    """How often the derived state is snapshotted, and where, so a restart replays only the log since."""

    PREFIX: ClassVar[str] = "SNAPSHOT_"
    every_s: float = setting(60.0, "snapshot the derived state this often, seconds (0: takes none, still starts from "
                                   "one found)")
    dir: str = setting("", "where snapshots are kept (a volume in a container); empty: APP_ID-data/snapshots in the "
                           "working directory")


@dataclass(frozen=True)
class SigningSettings:
    """The key versions are signed with, the keys a subscriber trusts and the operators' keys."""

    PREFIX: ClassVar[str] = ""
    signing_key: str = setting("", "PEM file of the Ed25519 key the worker signs versions with (`metastream keys "
                                   "generate`); empty: versions go out unsigned")
    verify_keys: str = setting("", "PEM files (comma-separated) of the public keys a subscriber trusts; set, it loads "
                                   "only versions one of them signed")
    operator_keys: str = setting("", "PEM files (comma-separated) of the operators' public keys; set, the worker acts "
                                     "only on rollout and A/B requests one of them signed (`--operator-key`) and "
                                     "refuses the others with a RequestRefused event")


@dataclass(frozen=True)
class CatalogSettings:
    """The models the worker serves from the start, and the policy for model ids it was not told about."""

    PREFIX: ClassVar[str] = ""
    models: dict[str, dict[str, Any]] = setting({"sine": served(sine_model())}, "JSON: model id -> learner config, a "
                                                "preset's name (sine, digits; served as a mixture of meta-models unless "
                                                "{\"preset\": \"sine\", \"mixture\": false}) or a model folder")
    new_models: str = setting("", "JSON list of {\"pattern\": \"reviewer-*\", \"model\": preset, folder or config}: "
                                  "adopt unknown model ids that match, from the most similar model; empty: they are "
                                  "dead-lettered")
    new_models_max: int = setting(100, "most model ids the new-models policy adopts", bound=ONE)
