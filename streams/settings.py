"""Worker settings, read from ``METASTREAM_*`` environment variables with defaults that work out
of the box (embedded broker, the sine model)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from learners.registry import default_config, task_kind


def _default_models() -> dict[str, dict[str, Any]]:
    cfg = default_config("sine", "fomaml")
    cfg["learner"].update(inner_lr=0.01, inner_steps=1, test_steps=10, meta_lr=1e-3)
    return {"sine": cfg}


def model_dims(config: dict[str, Any]) -> tuple[int, int]:
    """(feature_dim, target_dim) of the experiences a model learns from."""
    if config["task"]["name"] == "sine":
        return 1, 1
    size = config["task"].get("image_size", 28)
    return size * size, 1


def model_presets() -> dict[str, dict[str, Any]]:
    """Stream model configs by name: ``sine`` (first-order MAML, 40-40 MLP, 10-shot regression) and
    ``digits`` (ProtoNet on a small MLP, 5-way 1-shot 14x14 digit classification)."""
    from .fleet import digits_model

    return {"sine": _default_models()["sine"], "digits": digits_model()}


def parse_models(text: str) -> dict[str, dict[str, Any]]:
    """``METASTREAM_MODELS``: a JSON object of model id -> learner config, or -> a preset's name."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"METASTREAM_MODELS is not JSON ({exc}); e.g. '{{\"sine\": \"sine\", \"digits\": \"digits\"}}'") from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError("METASTREAM_MODELS must be a non-empty JSON object: model id -> config or preset name")
    presets = model_presets()
    models = {}
    for mid, cfg in raw.items():
        if isinstance(cfg, str):
            if cfg not in presets:
                raise ValueError(f"model {mid!r}: unknown preset {cfg!r}; presets: {', '.join(presets)}")
            cfg = presets[cfg]
        if not isinstance(cfg, dict) or not {"algo", "task", "backbone"} <= set(cfg):
            raise ValueError(f"model {mid!r}: a config needs algo, task and backbone (or name a preset: {', '.join(presets)})")
        models[mid] = cfg
    return models


@dataclass
class Settings:
    kafka: str | None = None  # bootstrap servers; None starts the embedded broker
    app_id: str = "metastream"
    experiences_topic: str = "experiences"
    models_topic: str = "models"
    events_topic: str = "events"
    dlq_topic: str = "experiences.dlq"
    partitions: int = 4
    metrics_port: int = 9108  # 0 disables the HTTP endpoint
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, so Prometheus can scrape it
    buffer_mb: float = 32.0
    max_points_per_task: int = 40
    max_batch_rows: int = 4096
    drift_detector: str = "adwin"
    drift_group: int = 4  # tasks scored together for the drift signal
    drift_steps: int = 3  # adaptation steps of that score
    drift_tasks_per_s: float = 200.0  # at most this many tasks scored per second (a sample at high rates)
    new_tasks_trigger: int = 200  # meta-update after this many new tasks
    schedule_s: float = 0.0  # meta-update at least this often (0: never on a timer)
    update_iterations: int = 150
    update_meta_batch: int = 16
    drift_update_iterations: int = 50  # a drift update is short: an answer now, routine updates refine it
    drift_update_recent: int = 16  # a drift update draws most tasks from this many newest training tasks
    drift_update_share: float = 0.75  # ... this share of each meta-batch (the rest is replay)
    heldout_tasks: int = 16
    margin: float = 0.05
    guard: bool = True  # the forgetting guard: no published version may lose > guard_max_drop points on an old era
    guard_max_drop: float = 3.0  # the promise is 5 points; 2 are left for the probes' sampling error
    guard_probes: int = 64  # held-out probe tasks kept per era
    distill: float = 1.0  # weight of the step that keeps a candidate close to its parent on replayed tasks
    ewc: float = 1.0  # EWC strength in that step (Fisher of the parent on old eras' tasks); 0 turns it off
    min_update_gap_s: float = 0.2
    rebalance_timeout_s: float = 3.0
    torch_threads: int = 1  # the learners' models are small; threads fight the event loop for cores
    models: dict[str, dict[str, Any]] = field(default_factory=_default_models)

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        s = cls()
        env = os.environ
        s.kafka = env.get("METASTREAM_KAFKA") or None
        for name, conv in (("metrics_port", int), ("buffer_mb", float), ("partitions", int), ("drift_detector", str),
                           ("new_tasks_trigger", int), ("schedule_s", float), ("update_iterations", int), ("margin", float),
                           ("app_id", str), ("torch_threads", int), ("metrics_host", str),
                           ("guard", lambda v: v.lower() not in ("0", "false", "no", "off")), ("guard_max_drop", float),
                           ("distill", float), ("ewc", float), ("drift_update_share", float), ("drift_update_iterations", int)):
            key = f"METASTREAM_{name.upper()}"
            if key in env:
                setattr(s, name, conv(env[key]))
        if "METASTREAM_MODELS" in env:
            s.models = parse_models(env["METASTREAM_MODELS"])
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        return s

    @property
    def topics(self) -> list[str]:
        return [self.experiences_topic, self.models_topic, self.events_topic, self.dlq_topic]

    def dims(self) -> dict[str, tuple[int, int]]:
        return {mid: model_dims(cfg) for mid, cfg in self.models.items()}

    def classifiers(self) -> frozenset[str]:
        """Model ids whose targets are class labels."""
        return frozenset(mid for mid, cfg in self.models.items() if task_kind(cfg) == "classification")

    def continual_strengths(self, config: dict[str, Any]) -> tuple[float, float]:
        """``(distill, ewc)`` for a model: its config's ``continual`` section wins over the worker's
        defaults (EWC's strength depends on the scale of the model's outputs)."""
        own = config.get("continual", {})
        return float(own.get("distill", self.distill)), float(own.get("ewc", self.ewc))
