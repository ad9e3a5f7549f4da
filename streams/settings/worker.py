"""The worker's settings: one frozen object holding one frozen object per component
(``components.py``), read once from the ``METASTREAM_*`` variables by :meth:`Settings.from_env`,
each value checked as it is read (``checks.py``). Defaults work out of the box (embedded broker,
the sine model). ``metastream settings`` prints them (``--markdown``: docs/settings.md).

A setting's *name* is its variable's after ``METASTREAM_``, lower-cased (``rollout_alpha``):
the keys of :meth:`Settings.of`, of :meth:`Settings.from_env`'s overrides and of the settings a
version records, so they read the same as the variables an operator sets.

>>> s = Settings.of(rollout_alpha=0.1, guard=False)
>>> s.rollout.alpha, s.guard.enabled, s.topics.models
(0.1, False, 'models')
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from learners.errors import ConfigError
from learners.recipes import task_kind
from learners.tasks.split import points_needed

from streams.catalog.model_configs import parse_models
from streams.catalog.presets import missing_ok, model_dims
from streams.kafka.connection import KafkaSecurity
from streams.settings.checks import check_value, parse_bool, unknown_variables
from streams.settings.components import (BrokerSettings, CatalogSettings, DiagnosisSettings, DriftSettings, GuardSettings,
                                         IngestSettings, ProcessSettings, RolloutSettings, SearchSettings, ShadowSettings,
                                         SigningSettings, SnapshotSettings, TopicSettings, UpdateSettings)
from streams.worker.rollout.policy import RolloutRules

ENV_PREFIX = "METASTREAM_"
log = logging.getLogger("metastream.settings")


@dataclass(frozen=True)
class Settings:
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    process: ProcessSettings = field(default_factory=ProcessSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    update: UpdateSettings = field(default_factory=UpdateSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    shadow: ShadowSettings = field(default_factory=ShadowSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    diagnosis: DiagnosisSettings = field(default_factory=DiagnosisSettings)
    snapshots: SnapshotSettings = field(default_factory=SnapshotSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)

    @classmethod
    def of(cls, **values: Any) -> "Settings":
        """Defaults with ``values`` by setting name (``buffer_mb=1.0``), not read from the environment."""
        s = cls().replaced(**values)
        s.check_stages()
        return s

    def replaced(self, **values: Any) -> "Settings":
        """These settings with ``values`` by setting name (``kafka=None``), checked as :meth:`of` checks them."""
        parts: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            if name not in SETTINGS:
                raise TypeError(f"no setting named {name}")
            component, attr, spec, _ = SETTINGS[name]
            check_value(ENV_PREFIX + name.upper(), value, spec.metadata["bound"], spec.metadata["choices"])
            parts.setdefault(component, {})[attr] = value
        return dataclasses.replace(self, **{c: dataclasses.replace(getattr(self, c), **v) for c, v in parts.items()})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, then ``METASTREAM_*`` variables, then ``overrides`` (by setting name) that are not ``None``."""
        env = os.environ if environ is None else environ
        values = {}
        for name, (_, _, spec, hint) in SETTINGS.items():
            variable = ENV_PREFIX + name.upper()
            if variable in env:
                values[name] = _convert(variable, hint, env[variable])
        values.update({k: v for k, v in overrides.items() if v is not None})
        for warning in unknown_variables(env, [row[0] for row in cls.describe()]):
            log.warning(warning)
        KafkaSecurity.from_env(env)  # a bad connection setting fails here, not at the first client
        s = cls.of(**values)
        s.check_task_sizes()
        for config in s.catalog.models.values():  # a model's own update and guard settings, checked now
            s.update_for(config), s.guard_for(config)
        s.new_model_config("")  # a bad policy fails at start, not at the first unknown id
        return s

    def new_model_config(self, model_id: str) -> dict[str, Any] | None:
        """The template config for an unknown ``model_id`` by ``METASTREAM_NEW_MODELS`` (``None``: none)."""
        return _policy(self.catalog.new_models).config_for(model_id)

    def check_task_sizes(self) -> None:
        """A model whose tasks need more points than a buffered task keeps could never update:
        say so at start, with the setting to raise."""
        keeps = self.ingest.max_points_per_task
        for mid, cfg in self.catalog.models.items():
            task = cfg["task"]
            need = points_needed(int(task.get("shots", 1)), task_kind(cfg), int(task.get("ways", 1)))
            if need > keeps:
                raise ConfigError(f"model {mid!r} needs {need} points per task (support and query: 2 x shots per class) but a "
                                  f"buffered task keeps {keeps}: set {ENV_PREFIX}MAX_POINTS_PER_TASK={need} or lower its shots")

    def check_stages(self) -> None:
        stages = self.rollout.stages
        if not stages or stages[-1] != 100.0 or list(stages) != sorted(stages) or stages[0] <= 0:
            text = ",".join(f"{s:g}" for s in stages)
            raise ConfigError(f"{ENV_PREFIX}ROLLOUT_STAGES={text!r}: increasing percentages ending at 100")

    @classmethod
    def sections(cls) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
        """``(component, what it is, rows)`` in order, each row ``(variable, default, what it does)``;
        the Kafka package's connection settings follow the broker's."""
        defaults, out = cls(), []
        for part in dataclasses.fields(cls):
            rows = []
            for name, (component, attr, spec, _) in SETTINGS.items():
                if component == part.name:
                    rows.append((ENV_PREFIX + name.upper(), _shown(getattr(getattr(defaults, component), attr)), spec.metadata["doc"]))
            out.append((part.name, (part.default_factory.__doc__ or "").split("\n\n")[0], rows))
            if part.name == "broker":
                out.append(("connection", KafkaSecurity.__doc__.split("\n\n")[0], KafkaSecurity.variables()))
        return out

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, what it does)`` per setting, component by component."""
        return [row for _, _, rows in cls.sections() for row in rows]

    def dims(self) -> dict[str, tuple[int, int]]:
        return {mid: model_dims(cfg) for mid, cfg in self.catalog.models.items()}

    def missing_ok(self) -> frozenset[str]:
        """Model ids whose features may have gaps (NaN): their backbone imputes them."""
        return frozenset(mid for mid, cfg in self.catalog.models.items() if missing_ok(cfg))

    def classifiers(self) -> frozenset[str]:
        """Model ids whose targets are class labels."""
        return frozenset(mid for mid, cfg in self.catalog.models.items() if task_kind(cfg) == "classification")

    def rollout_rules(self) -> RolloutRules:
        return self.rollout.rules()

    REPLAY_SETTINGS = ("guard", "guard_probes", "drift_detector", "max_batch_rows", "max_points_per_task", "agent_rows_per_s",
                       "agent_bytes_per_s")

    def replay_settings(self) -> dict[str, Any]:
        """The settings that decide what the ingest path puts in a buffer (a version records them), by name."""
        return {name: self.value(name) for name in self.REPLAY_SETTINGS}

    def value(self, name: str) -> Any:
        """One setting's value by its name (``guard_probes``)."""
        component, attr = SETTINGS[name][:2]
        return getattr(getattr(self, component), attr)

    def signer(self) -> "Signer | None":  # noqa: F821
        """The worker's :class:`~streams.records.signing.Signer` (``None`` without a key)."""
        from streams.records.signing import Signer

        return Signer.from_file(self.signing.signing_key) if self.signing.signing_key else None

    def operators(self) -> "Verifier | None":  # noqa: F821
        """The operators' keys the worker checks requests against (``None``: requests are not checked)."""
        from streams.records.signing import Verifier

        return Verifier.from_paths(self.signing.operator_keys)

    def update_for(self, config: Mapping[str, Any]) -> UpdateSettings:
        """How ``config``'s model updates: its own ``update`` section wins over the worker's defaults."""
        return _own(self.update, config.get("update", {}), "update")

    def guard_for(self, config: Mapping[str, Any]) -> GuardSettings:
        """The guard's terms for ``config``'s model: its ``continual`` section's ``distill``, ``ewc`` and
        ``max_drop`` win over the worker's (EWC's strength depends on the scale of the model's outputs)."""
        own = {k: v for k, v in config.get("continual", {}).items() if k in ("distill", "ewc", "max_drop")}
        return _own(self.guard, own, "continual")


def _shown(default: Any) -> str:
    """A default as its variable would spell it."""
    if isinstance(default, dict):  # the models: id -> preset name
        return "{" + ", ".join(f'"{mid}": "{mid}"' for mid in default) + "}"
    if isinstance(default, bool):
        return str(int(default))
    if isinstance(default, tuple):
        return ",".join(f"{v:g}" for v in default)
    return "unset" if default is None else str(default)


def _own(defaults: Any, section: Any, where: str) -> Any:
    """``defaults`` with a model config's ``section`` over them, each value checked as a variable's is."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"a model config's {where!r} section is an object of settings, e.g. {{\"iterations\": 300}}")
    known = {f.name: f for f in dataclasses.fields(defaults)}
    for key, value in section.items():
        if key not in known:
            raise ConfigError(f"a model config's {where!r} section has no setting {key!r}: choose from {', '.join(known)}")
        check_value(f"{where}.{key}", value, known[key].metadata["bound"], known[key].metadata["choices"])
    return dataclasses.replace(defaults, **section) if section else defaults


def _policy(text: str) -> Any:
    from streams.catalog.new_model_policy import NewModelPolicy

    if text not in _POLICIES:
        _POLICIES[text] = NewModelPolicy.parse(text)
    return _POLICIES[text]


_POLICIES: dict[str, Any] = {}


def _settings_by_name() -> dict[str, tuple[str, str, dataclasses.Field, Any]]:
    """Setting name -> (component attribute, field, the field, its type), in the order they are documented."""
    out = {}
    for part in dataclasses.fields(Settings):
        kind = part.default_factory  # the component's class
        hints = typing.get_type_hints(kind)
        for f in dataclasses.fields(kind):
            variable = f.metadata["variable"] or kind.PREFIX + f.name.upper() + getattr(kind, "SUFFIX", "")
            out[variable.lower()] = (part.name, f.name, f, hints[f.name])
    return out


SETTINGS = _settings_by_name()


def settings_page() -> str:
    """``docs/settings.md``: every setting, component by component, from :meth:`Settings.sections`."""
    head = ("# Settings\n\nA worker reads these `METASTREAM_*` variables once, at start, into one frozen object per\n"
            "component (`streams/settings/components.py`); a value it cannot use stops it with one line naming the\n"
            "variable and what it accepts, and an unknown `METASTREAM_*` variable gets a warning naming the nearest\n"
            "real one. A model's config may set its own update settings in an `update` section\n"
            "(`{\"update\": {\"iterations\": 300}}`) and its own guard terms in `continual` (`distill`, `ewc`,\n"
            "`max_drop`). Generated by `metastream settings --markdown`.\n")
    parts = [head]
    for component, what, rows in Settings.sections():
        parts.append(f"\n## {component}\n\n{' '.join(what.split())}\n\n| variable | default | what it does |\n| --- | --- | --- |\n")
        parts += [f"| `{var}` | `{default}` | {doc} |\n" for var, default, doc in rows]
    return "".join(parts)


def _convert(variable: str, hint: Any, text: str) -> Any:
    """One variable's text as its setting's type, or a :class:`ConfigError` naming both."""
    if variable == ENV_PREFIX + "MODELS":
        return parse_models(text)
    if variable == ENV_PREFIX + "KAFKA":
        return text or None
    if variable == ENV_PREFIX + "ROLLOUT_STAGES":
        try:
            return tuple(float(s) for s in text.split(","))
        except ValueError:
            raise ConfigError(f"{variable}={text!r}: give percentages, e.g. 5,25,50,100") from None
    kind = hint if isinstance(hint, type) else str
    try:
        if kind is bool:
            return parse_bool(variable, text)
        return kind(text)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"{variable}={text!r} is not a valid {kind.__name__}") from None
