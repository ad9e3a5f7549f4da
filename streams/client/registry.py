"""The model registry as an agent developer or operator uses it, in MLflow's vocabulary: a model's
versions, each with its stage, aliases and tags; a version got by number or by ``name@alias``;
user-defined aliases and tags (a ``description`` tag describes a version) set by writing an
``AliasSet`` or ``TagSet`` event. The registry is the log: versions on ``models``, aliases and
tags on ``events`` (the worker's champion, canary and challenger are aliases too), so every reader
sees the same registry and an audit can replay how it came to be.

    async with ModelRegistry("127.0.0.1:9092") as registry:
        for v in await registry.versions("sine"): print(v.version, v.stage, v.aliases, v.tags)
        record = await registry.get("sine@production")        # or get("sine", 3)
        await registry.set_alias("sine", "production", 3)
        await registry.set_tag("sine", 3, "description", "the rotated-digits fix")

:class:`SyncModelRegistry` offers the same without asyncio. Nothing here imports torch;
:meth:`ModelRegistry.load` loads a version into its learner (and so needs torch).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from schemas import codec_for

from streams.records.aliases import aliases_from_events, version_stages
from streams.records.wire import Cause, DecisionType, decision_record

WORKER_ALIASES = ("champion", "canary", "challenger")  # set by the worker's rollouts, never by hand
ALIAS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class RegistryError(LookupError):
    """A reference that names no version, or an alias or tag that cannot be set; the message says why."""


@dataclass
class ModelVersionInfo:
    """One version as the registry lists it (the record itself: :meth:`ModelRegistry.get`)."""

    model_id: str
    version: int
    parent_version: int | None
    algorithm: str
    created_at_ms: int
    sha256: str
    stage: str
    metrics: dict[str, float]
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return self.tags.get("description", "")


@dataclass
class RegistryView:
    """What the two topics said when they were read: records by (model, version), user aliases and tags."""

    records: dict[tuple[str, int], dict[str, Any]]
    aliases: dict[str, dict[str, int]]  # model -> alias -> version (user-defined and the worker's)
    tags: dict[tuple[str, int], dict[str, str]]
    stages: dict[str, dict[int, str]]

    @classmethod
    def of(cls, versions: list[dict[str, Any]], events: list[dict[str, Any]]) -> "RegistryView":
        records = {(r["model_id"], r["version"]): r for r in versions}
        aliases: dict[str, dict[str, int]] = {}
        tags: dict[tuple[str, int], dict[str, str]] = {}
        for e in events:
            label, kind = e.get("label"), e["event_type"]
            if label is None or e["version"] is None:
                continue
            if kind == DecisionType.ALIAS_SET:
                aliases.setdefault(e["model_id"], {})[label["key"]] = int(e["version"])
            elif kind == DecisionType.TAG_SET:
                found = tags.setdefault((e["model_id"], int(e["version"])), {})
                if label["value"]:
                    found[label["key"]] = label["value"]
                else:
                    found.pop(label["key"], None)
        for model_id, a in aliases_from_events(events).items():
            for name in WORKER_ALIASES:
                if getattr(a, name) is not None:
                    aliases.setdefault(model_id, {})[name] = getattr(a, name)
        return cls(records, aliases, tags, version_stages(events))

    def resolve(self, model_id: str, version: int | None = None, alias: str | None = None) -> int:
        """The version ``alias`` names, or ``version`` (the newest when neither is given)."""
        published = sorted(v for (m, v) in self.records if m == model_id)
        if not published:
            raise RegistryError(f"model {model_id!r} has no published version")
        if alias is not None:
            if alias not in self.aliases.get(model_id, {}):
                known = ", ".join(sorted(self.aliases.get(model_id, {}))) or "none"
                raise RegistryError(f"{model_id} has no alias {alias!r} (its aliases: {known})")
            return self.aliases[model_id][alias]
        if version is None:
            return published[-1]
        if version not in published:
            raise RegistryError(f"{model_id} v{version} is not published (versions {published[0]}..{published[-1]})")
        return version

    def info(self, model_id: str, version: int) -> ModelVersionInfo:
        r = self.records[(model_id, version)]
        names = sorted(a for a, v in self.aliases.get(model_id, {}).items() if v == version)
        return ModelVersionInfo(model_id, version, r["parent_version"], r["algorithm"], r["created_at_ms"], r["sha256"],
                                self.stages.get(model_id, {}).get(version, r["rollout_stage"]), dict(r["metrics"]), names,
                                dict(self.tags.get((model_id, version), {})))


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``name``, ``name@alias`` or ``name/3`` (MLflow's ``models:/name/3`` and ``models:/name@alias`` too).

    >>> parse_ref("sine@production"), parse_ref("models:/sine/3"), parse_ref("sine")
    (('sine', None, 'production'), ('sine', 3, None), ('sine', None, None))
    """
    ref = ref.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, None, alias
    if "/" in ref:
        name, number = ref.rsplit("/", 1)
        if not number.isdigit():
            raise RegistryError(f"cannot read {ref!r}: use NAME, NAME@ALIAS or NAME/VERSION")
        return name, int(number), None
    return ref, None, None


class ModelRegistry:
    """Reads the registry from the log (each call reads it afresh) and writes aliases and tags."""

    def __init__(self, bootstrap: str, models_topic: str = "models", events_topic: str = "events",
                 operator_key: str | None = None) -> None:
        self.bootstrap, self.models_topic, self.events_topic = bootstrap, models_topic, events_topic
        self.operator_key = operator_key  # PEM file: aliases and tags written signed

    async def __aenter__(self) -> "ModelRegistry":
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def view(self) -> RegistryView:
        from streams.kafka.topics import read_records

        versions = [rec for _, rec in await read_records(self.bootstrap, self.models_topic, "ModelVersion")]
        events = [rec for _, rec in await read_records(self.bootstrap, self.events_topic, "DecisionEvent")]
        return RegistryView.of(versions, events)

    async def models(self) -> list[str]:
        return sorted({m for m, _ in (await self.view()).records})

    async def versions(self, model_id: str) -> list[ModelVersionInfo]:
        view = await self.view()
        return [view.info(model_id, v) for (m, v) in sorted(view.records) if m == model_id]

    async def version(self, ref: str, version: int | None = None) -> ModelVersionInfo:
        """The listing of the version ``ref`` names (``name@alias``, ``name/3``, or ``name`` with ``version``)."""
        view = await self.view()
        name, number, alias = parse_ref(ref)
        return view.info(name, view.resolve(name, version if version is not None else number, alias))

    async def get(self, ref: str, version: int | None = None) -> dict[str, Any]:
        """The ModelVersion record ``ref`` names, weights included."""
        view = await self.view()
        name, number, alias = parse_ref(ref)
        return view.records[(name, view.resolve(name, version if version is not None else number, alias))]

    async def load(self, ref: str, version: int | None = None, verifier=None):
        """The version ``ref`` names, verified and loaded into its learner (imports torch)."""
        from streams.client.subscriber import load_model_version

        return load_model_version(await self.get(ref, version), verifier)

    async def set_alias(self, model_id: str, alias: str, version: int) -> None:
        """Point the user-defined ``alias`` of ``model_id`` at a published ``version``."""
        if alias in WORKER_ALIASES or not ALIAS_NAME.match(alias):
            raise RegistryError(f"{alias!r} cannot be set by hand: an alias is a letter then letters, digits, '-' or '_', "
                                f"and {', '.join(WORKER_ALIASES)} are the rollouts' own")
        (await self.view()).resolve(model_id, version)
        await self._write(DecisionType.ALIAS_SET, model_id, version, (alias, ""), f"alias {alias} -> v{version}")

    async def set_tag(self, model_id: str, version: int, key: str, value: str) -> None:
        """Tag a published version (``description`` describes it); an empty ``value`` removes the tag."""
        if not key or len(key) > 128:
            raise RegistryError("a tag's key is 1 to 128 characters")
        (await self.view()).resolve(model_id, version)
        await self._write(DecisionType.TAG_SET, model_id, version, (key, value), f"tag {key} of v{version}")

    async def _write(self, kind: DecisionType, model_id: str, version: int, label: tuple[str, str], reason: str) -> None:
        from aiokafka import AIOKafkaProducer

        from streams.kafka.connection import client_options
        from streams.kafka.durability import producer_options
        from streams.records.signing import Signer

        record = decision_record(kind, Cause.OPERATOR, model_id, reason, {}, version, label=label)
        if self.operator_key:
            record.update(Signer.from_file(self.operator_key).sign(record, "DecisionEvent"))
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **await producer_options(self.bootstrap), **client_options())
        await producer.start()
        try:
            await producer.send_and_wait(self.events_topic, codec_for("DecisionEvent").encode(record), key=model_id.encode())
        finally:
            await producer.stop()


class SyncModelRegistry:
    """:class:`ModelRegistry` for code without an event loop: every method runs to completion."""

    def __init__(self, *args, **kwargs) -> None:
        self._registry = ModelRegistry(*args, **kwargs)

    def __getattr__(self, name: str):
        method = getattr(self._registry, name)
        if not asyncio.iscoroutinefunction(method):
            return method
        return lambda *args, **kwargs: asyncio.run(method(*args, **kwargs))
