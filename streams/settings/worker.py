"""Worker settings: one dataclass, one default per setting, each settable from its
``METASTREAM_<NAME>`` environment variable and checked when read (``checks.py``). Defaults work out of the box (embedded broker, the
sine model). ``metastream settings`` prints them (``--markdown``: docs/settings.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import typing
from dataclasses import dataclass, field
from typing import Any

from learners.errors import ConfigError
from learners.registry import task_kind
from learners.tasks.split import points_needed

from streams.catalog.model_configs import parse_models
from streams.catalog.presets import missing_ok, model_dims, sine_model
from streams.kafka.connection import KafkaSecurity
from streams.settings.checks import check_value, parse_bool, unknown_variables
from streams.worker.rollout.policy import RolloutRules

ENV_PREFIX = "METASTREAM_"
log = logging.getLogger("metastream.settings")


def _doc(text: str, **kw: Any) -> Any:
    return field(metadata={"doc": text}, **kw)


@dataclass
class Settings:
    kafka: str | None = _doc("bootstrap servers; unset starts the embedded broker", default=None)
    app_id: str = _doc("Faust app id and consumer group", default="metastream")
    experiences_topic: str = _doc("topic agents publish ExperienceBatch records to", default="experiences")
    models_topic: str = _doc("topic of published ModelVersion records", default="models")
    events_topic: str = _doc("topic of DecisionEvent records (the audit trail)", default="events")
    dlq_topic: str = _doc("dead letters: what could not be used, with the reason", default="experiences.dlq")
    scores_topic: str = _doc("ScoreRecord: the losses fed to the drift detectors, replayed on restart", default="scores")
    partitions: int = _doc("partitions of the topics the worker creates", default=4)
    replication_factor: int = _doc("replicas of each topic the worker creates (3 on a production cluster)", default=1)
    min_insync_replicas: int = _doc("min.insync.replicas of the topics the worker creates: with acks=all a write "
                                    "needs this many copies (2 with 3 replicas)", default=1)
    metrics_port: int = _doc("Prometheus endpoint port; 0 turns it off", default=9108)
    web_port: int = _doc("port of the status page (/status, Faust's web server); 0 turns it off", default=6066)
    web_host: str = _doc("address the status page binds (0.0.0.0 in a container)", default="127.0.0.1")
    metrics_host: str = _doc("address the metrics endpoint binds (0.0.0.0 in a container)", default="127.0.0.1")
    buffer_mb: float = _doc("replay buffer bytes, shared by the models (MiB)", default=32.0)
    max_points_per_task: int = _doc("points kept per buffered task", default=40)
    max_batch_rows: int = _doc("most experiences one message may hold", default=4096)
    drift_detector: str = _doc("adwin or pagehinkley", default="adwin")
    drift_group: int = _doc("most tasks scored together for the drift signal (one batched adaptation, whose cost is mostly per call)", default=16)
    drift_window_s: float = _doc("a task with enough points waits at most this long to be scored, seconds", default=0.25)
    drift_steps: int = _doc("adaptation steps of that score", default=3)
    drift_tasks_per_s: float = _doc("most tasks scored per second (a sample at high rates)", default=200.0)
    new_tasks_trigger: int = _doc("meta-update after this many new tasks", default=200)
    schedule_s: float = _doc("meta-update at least this often, seconds (0: never on a timer)", default=0.0)
    snapshot_every_s: float = _doc("snapshot the derived state this often, seconds, so a restart replays only the log "
                                   "since (0: takes none, still starts from one found)", default=60.0)
    snapshot_dir: str = _doc("where snapshots are kept (a volume in a container); empty: APP_ID-data/snapshots in "
                             "the working directory", default="")
    update_iterations: int = _doc("meta-iterations of a routine update", default=150)
    update_meta_batch: int = _doc("tasks per meta-iteration", default=16)
    update_recent: int = _doc("a routine update draws part of each meta-batch from this many newest tasks", default=64)
    update_share: float = _doc("... this share of it (the rest is replay from the whole buffer)", default=0.5)
    drift_update_iterations: int = _doc("meta-iterations of a drift update: an answer now, routine ones refine it", default=50)
    drift_update_recent: int = _doc("a drift update draws most tasks from this many newest tasks", default=16)
    drift_update_share: float = _doc("... this share of each meta-batch (the rest is replay)", default=0.75)
    drift_retries: int = _doc("a drift update whose candidate is rejected is run again, on the tasks that came since, "
                              "up to this many times (0: the next routine update answers the drift)", default=3)
    heldout_tasks: int = _doc("newest tasks held out to judge candidate against champion", default=16)
    margin: float = _doc("a candidate is published unless worse than the champion by more than this "
                         "(regression: relative MSE; classification: absolute accuracy)", default=0.05)
    guard: bool = _doc("the forgetting guard; 0 turns it off (and distillation and EWC with it)", default=True)
    guard_max_drop: float = _doc("points an old era may lose before a candidate is redone or rejected "
                                 "(the promise is 5 on fresh tasks; 3 are left for the probes' sampling error and reuse)", default=2.0)
    guard_probes: int = _doc("held-out probe tasks kept per era", default=64)
    distill: float = _doc("weight of the step keeping a candidate close to its parent on old tasks", default=1.0)
    ewc: float = _doc("EWC strength in that step (Fisher of the parent on old eras' tasks); 0 turns it off", default=1.0)
    search_every_s: float = _doc("search each model's hyperparameters this often, seconds (0: never on a timer)", default=0.0)
    search_on_trend: bool = _doc("search when the champion's held-out error trends up; 0 turns it off", default=True)
    search_window: int = _doc("updates whose champion error make the trend", default=6)
    search_trend: float = _doc("relative rise of that error (newer half of the window against the older) that starts a search",
                               default=0.05)
    search_trials: int = _doc("trials of a search in the update process", default=6)
    search_iterations: int = _doc("meta-iterations of each trial (the winner trains as long as a routine update)", default=40)
    search_cooldown_s: float = _doc("a model is searched at most this often, seconds", default=60.0)
    shadow_window: int = _doc("incoming tasks over which a model's shadow candidates and champion are compared", default=64)
    shadow_margin: float = _doc("a shadow challenges the champion when its windowed reward (accuracy, or 1 - relative MSE / 4) "
                                "is higher by this much", default=0.02)
    shadow_min_tasks: int = _doc("tasks a shadow must be scored on before it may challenge", default=32)
    shadow_exploration: float = _doc("UCB exploration bonus that decides which shadow the next shadow update trains", default=0.5)
    rollout: bool = _doc("roll each new version out by cohorts (5% -> 25% -> 50% -> 100%); 0: every version is champion",
                         default=True)
    rollout_stages: str = _doc("the canary's share of agents at each stage, percent", default=",".join(f"{s:g}" for s in RolloutRules.stages))
    rollout_alpha: float = _doc("error level of the always-valid comparison of canary and champion", default=RolloutRules.alpha)
    rollout_margin: float = _doc("a canary advances when worse than the champion by less than this share of its mean loss",
                                 default=RolloutRules.margin)
    rollout_min_samples: int = _doc("canary observations (tasks agents reported losses of) a stage must see before it advances",
                                    default=RolloutRules.min_samples)
    rollout_patience: int = _doc("a stage with this many times rollout_min_samples observations and no significant harm "
                                   "advances, whatever the point estimate", default=RolloutRules.patience)
    rollout_evidence_timeout_s: float = _doc("a stage with fewer observations after this many seconds advances: the gate's "
                                             "verdict stands", default=RolloutRules.evidence_timeout_s)
    rollout_latency_ratio: float = _doc("roll back when the canary's p95 prediction latency exceeds the champion's this many times",
                                        default=RolloutRules.latency_ratio)
    rollout_error_margin: float = _doc("roll back when the canary's error rate exceeds the champion's by this much", default=RolloutRules.error_margin)
    ab_max_s: float = _doc("an A/B test that has not decided in this many seconds ends inconclusive", default=600.0)
    diagnosis_rules: str = _doc("a JSON file of diagnosis rules; empty: the shipped streams/worker/diagnosis/rules.json", default="")
    diagnose_every_s: float = _doc("how often the rules are evaluated, seconds (0: never)", default=2.0)
    quarantine_s: float = _doc("how long a quarantined agent's experiences are refused, seconds", default=300.0)
    distil_factor: float = _doc("a distilled student's width relative to the champion's (the slow-inference remedy)",
                                default=0.5)
    min_update_gap_s: float = _doc("routine updates of one model start at least this far apart, seconds", default=0.2)
    rebalance_timeout_s: float = _doc("consumer-group rebalance timeout, seconds", default=3.0)
    torch_threads: int = _doc("torch threads of the worker (its models are small)", default=1)
    agent_rows_per_s: float = _doc("ingest quota of each agent, rows per second (bursts of 2 s); over it a message is "
                                   "dead-lettered as over_quota; 0: no quota", default=0.0)
    agent_bytes_per_s: float = _doc("ingest quota of each agent, message bytes per second; 0: no quota", default=0.0)
    signing_key: str = _doc("PEM file of the Ed25519 key the worker signs versions with (`metastream keys generate`); "
                            "empty: versions go out unsigned", default="")
    verify_keys: str = _doc("PEM files (comma-separated) of the public keys a subscriber trusts; set, it loads only "
                            "versions one of them signed", default="")
    new_models: str = _doc("JSON list of {\"pattern\": \"reviewer-*\", \"model\": preset, folder or config}: adopt unknown model "
                           "ids that match, from the most similar model; empty: they are dead-lettered", default="")
    new_models_max: int = _doc("most model ids the new-models policy adopts", default=100)
    models: dict[str, dict[str, Any]] = _doc("JSON: model id -> learner config, a preset's name (sine, digits) or a model folder",
                                             default_factory=lambda: {"sine": sine_model()})

    _policy = None  # the new-models policy, parsed once (not a setting)

    @classmethod
    def from_env(cls, environ: typing.Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, then ``METASTREAM_*`` variables, then ``overrides`` that are not ``None``."""
        env = os.environ if environ is None else environ
        s = cls()
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env:
                value = _convert(f.name, hints[f.name], env[key])
                check_value(key, f.name, value)
                setattr(s, f.name, value)
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        for warning in unknown_variables(env, [row[0] for row in cls.describe()]):
            log.warning(warning)
        KafkaSecurity.from_env(env)  # a bad connection setting fails here, not at the first client
        s.rollout_rules()
        s.check_task_sizes()
        s.new_model_config("")  # a bad policy fails at start, not at the first unknown id
        return s

    def new_model_config(self, model_id: str) -> dict[str, Any] | None:
        """The template config for an unknown ``model_id`` by ``METASTREAM_NEW_MODELS`` (``None``: none)."""
        from streams.catalog.new_model_policy import NewModelPolicy
        if self._policy is None:
            self._policy = NewModelPolicy.parse(self.new_models)
        return self._policy.config_for(model_id)

    def check_task_sizes(self) -> None:
        """A model whose tasks need more points than a buffered task keeps could never update:
        say so at start, with the setting to raise."""
        for mid, cfg in self.models.items():
            task = cfg["task"]
            need = points_needed(int(task.get("shots", 1)), task_kind(cfg), int(task.get("ways", 1)))
            if need > self.max_points_per_task:
                raise ConfigError(f"model {mid!r} needs {need} points per task (support and query: 2 x shots per class) but a "
                                  f"buffered task keeps {self.max_points_per_task}: set {ENV_PREFIX}MAX_POINTS_PER_TASK={need} "
                                  "or lower its shots")

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, what it does)`` per setting."""
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if f.name == "models":
                default = json.dumps({mid: mid for mid in default})
            elif isinstance(default, bool):
                default = int(default)
            rows.append((ENV_PREFIX + f.name.upper(), "unset" if default is None else str(default), f.metadata["doc"]))
            if f.name == "partitions":  # how clients connect: the Kafka package's own component
                rows += KafkaSecurity.variables()
        return rows

    @property
    def topics(self) -> list[str]:
        return [self.experiences_topic, self.models_topic, self.events_topic, self.dlq_topic, self.scores_topic]

    def dims(self) -> dict[str, tuple[int, int]]:
        return {mid: model_dims(cfg) for mid, cfg in self.models.items()}

    def missing_ok(self) -> frozenset[str]:
        """Model ids whose features may have gaps (NaN): their backbone imputes them."""
        return frozenset(mid for mid, cfg in self.models.items() if missing_ok(cfg))

    def classifiers(self) -> frozenset[str]:
        """Model ids whose targets are class labels."""
        return frozenset(mid for mid, cfg in self.models.items() if task_kind(cfg) == "classification")

    def rollout_rules(self) -> RolloutRules:
        """The rollout policy's rules (``streams/worker/rollout/policy.py``, where their defaults
        are: one default per setting) from these settings."""
        try:
            stages = tuple(float(s) for s in self.rollout_stages.split(","))
        except ValueError:
            raise ConfigError(f"METASTREAM_ROLLOUT_STAGES={self.rollout_stages!r}: give percentages, e.g. 5,25,50,100") from None
        if not stages or stages[-1] != 100.0 or list(stages) != sorted(stages) or stages[0] <= 0:
            raise ConfigError(f"METASTREAM_ROLLOUT_STAGES={self.rollout_stages!r}: increasing percentages ending at 100")
        return RolloutRules(stages=stages, alpha=self.rollout_alpha, margin=self.rollout_margin, min_samples=self.rollout_min_samples,
                            patience=self.rollout_patience,
                            evidence_timeout_s=self.rollout_evidence_timeout_s, latency_ratio=self.rollout_latency_ratio,
                            error_margin=self.rollout_error_margin)

    REPLAY_FIELDS = ("guard", "guard_probes", "drift_detector", "max_batch_rows", "max_points_per_task", "agent_rows_per_s",
                     "agent_bytes_per_s")

    def replay_settings(self) -> dict[str, Any]:
        """The settings that decide what the ingest path puts in a buffer (a version records them)."""
        return {name: getattr(self, name) for name in self.REPLAY_FIELDS}

    def signer(self) -> "Signer | None":  # noqa: F821
        """The worker's :class:`~streams.records.signing.Signer` (``None`` without a key)."""
        from streams.records.signing import Signer

        return Signer.from_file(self.signing_key) if self.signing_key else None

    def continual_strengths(self, config: dict[str, Any]) -> tuple[float, float]:
        """``(distill, ewc)`` for a model: its config's ``continual`` section wins over the worker's
        defaults (EWC's strength depends on the scale of the model's outputs)."""
        own = config.get("continual", {})
        return float(own.get("distill", self.distill)), float(own.get("ewc", self.ewc))


def settings_page() -> str:
    """``docs/settings.md``: every setting as a Markdown table, from :meth:`Settings.describe`."""
    head = ("# Settings\n\nA worker reads these `METASTREAM_*` variables once, at start; a value it cannot use stops it\n"
            "with one line naming the variable and what it accepts, and an unknown `METASTREAM_*` variable gets a\n"
            "warning naming the nearest real one. Generated by `metastream settings --markdown`.\n\n"
            "| variable | default | what it does |\n| --- | --- | --- |\n")
    return head + "".join(f"| `{var}` | `{default}` | {doc} |\n" for var, default, doc in Settings.describe())


def _convert(name: str, hint: Any, text: str) -> Any:
    """One variable's text as its setting's type, or a :class:`ConfigError` naming both."""
    if name == "models":
        return parse_models(text)
    if name == "kafka":
        return text or None
    kind = hint if isinstance(hint, type) else str
    try:
        if kind is bool:
            return parse_bool(f"{ENV_PREFIX}{name.upper()}", text)
        return kind(text)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={text!r} is not a valid {kind.__name__}") from None
