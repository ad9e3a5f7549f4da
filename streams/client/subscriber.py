"""The consumers' half of the client SDK: :class:`ModelSubscriber` follows the ``models`` topic,
verifies each version's sha256 and loads its safetensors weights (never a pickle) into the
learner its config names, ready to adapt to a consumer's few examples.

    async with ModelSubscriber("127.0.0.1:9092") as sub:
        model = await sub.latest("sine")            # or: async for model in sub.updates(): ...
        adapted = model.adapt(support_x, support_y)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Sequence

import numpy as np

from schemas import CodecError, codec_for

from streams.records.cohorts import cohort
from streams.records.aliases import Aliases
from streams.records.signing import Verifier
from streams.kafka.topics import TopicReader

if TYPE_CHECKING:  # torch is imported where a version is loaded: following the registry needs none
    import torch

    from learners.base import MetaLearner


class IntegrityError(ValueError):
    """A model version whose weights do not match their sha256."""


class UnusableVersion(ValueError):
    """A model version whose config or weights cannot be loaded into a learner."""


@dataclass
class LoadedModel:
    """One verified model version, loaded into its learner, ready to adapt to a few examples."""

    model_id: str
    version: int
    parent_version: int | None
    learner: MetaLearner
    metrics: dict[str, float]
    lineage: list[dict[str, Any]]
    created_at_ms: int
    record: dict[str, Any] = field(repr=False, default_factory=dict)

    def adapt(self, support_x, support_y, steps: int | None = None):
        import torch

        x = torch.as_tensor(np.asarray(support_x, dtype="f4"))
        y = torch.as_tensor(np.asarray(support_y, dtype="f4"))
        if self.learner.kind == "classification":
            y = y.reshape(-1).long()
        return self.learner.adapt(x, y, steps)

    def predict(self, adapted, query_x) -> "torch.Tensor":
        import torch

        return self.learner.predict(adapted, torch.as_tensor(np.asarray(query_x, dtype="f4")))


def load_model_version(record: dict[str, Any], verifier: Verifier | None = None) -> LoadedModel:
    """Verify a ModelVersion record's sha256 (and, with a ``verifier``, its signature) and load its
    safetensors weights into a fresh learner. Raises :class:`IntegrityError` or
    :class:`UnusableVersion`, saying why."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    from learners.registry import build_learner

    name = f"{record['model_id']} v{record['version']}"
    digest = hashlib.sha256(record["weights"]).hexdigest()
    if digest != record["sha256"]:
        raise IntegrityError(f"{name}: weights sha256 {digest[:12]}… does not match {record['sha256'][:12]}…")
    if verifier is not None and (why := verifier.check(record)) is not None:
        raise IntegrityError(f"{name}: {why}")
    try:
        config = json.loads(record["config_json"])
        learner = build_learner(config)
    except (ValueError, KeyError, TypeError) as exc:  # JSON, an unknown algorithm or backbone, a missing key
        raise UnusableVersion(f"{name}: its config does not build a learner ({type(exc).__name__}: {exc})") from None
    try:
        learner.model.load_state_dict(load_safetensors(record["weights"]))  # safetensors: data only, nothing executed
    except (SafetensorError, RuntimeError) as exc:  # not safetensors, or tensors that do not fit the model
        raise UnusableVersion(f"{name}: its weights do not load into its model ({exc})") from None
    learner.model.eval()
    return LoadedModel(record["model_id"], record["version"], record["parent_version"], learner, dict(record["metrics"]),
                       list(record["lineage"]), record["created_at_ms"], record)


class ModelSubscriber:
    """Follows the ``models`` topic from the beginning, verifies every version, and follows the
    aliases on the ``events`` topic: with an ``agent_id`` it serves the version of that agent's
    stable cohort (the canary during a rollout if the agent is in the canary's share, the version
    of its arm during an A/B test), without one the champion. Before any alias exists (a worker
    without rollouts) it serves the newest version. Duplicates and older versions, which
    at-least-once delivery can bring, are skipped; what fails verification is listed in
    :attr:`rejected` with the reason (the newest 1,000).

    With ``verify_keys`` (public keys as PEM bytes or files; default ``$METASTREAM_VERIFY_KEYS``) it
    loads only versions one of those keys signed: unsigned, tampered and foreign-signed versions are
    rejected."""

    def __init__(self, bootstrap: str, topic: str = "models", model_ids: Sequence[str] | None = None, agent_id: str | None = None,
                 events_topic: str = "events", keep: int = 4, verify_keys: Sequence[bytes | str] | None = None) -> None:
        self.bootstrap, self.topic, self.agent_id = bootstrap, topic, agent_id
        self.model_ids = set(model_ids) if model_ids else None
        self.versions: dict[str, dict[int, LoadedModel]] = {}  # loaded versions: the newest ``keep`` and the aliased
        self._records: dict[str, dict[int, dict]] = {}  # every version's record (bounded), loaded when an alias names it
        self.aliases: dict[str, Aliases] = {}
        self.latest_versions: dict[str, LoadedModel] = {}  # what this subscriber serves now, per model id
        self.rejected: deque[str] = deque(maxlen=1000)
        if verify_keys is None:
            self.verifier = Verifier.from_paths(os.environ.get("METASTREAM_VERIFY_KEYS", ""))
        else:
            self.verifier = Verifier(verify_keys) if verify_keys else None
        self.keep = keep
        self._reader = TopicReader(bootstrap, topic)
        self._events = TopicReader(bootstrap, events_topic)
        self._arrivals: list[LoadedModel] = []

    async def start(self) -> "ModelSubscriber":
        await self._reader.start()
        await self._events.start()
        return self

    async def stop(self) -> None:
        await self._reader.stop()
        await self._events.stop()

    async def __aenter__(self) -> "ModelSubscriber":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def serve(self, model_id: str, agent_id: str | None) -> LoadedModel | None:
        """The version agent ``agent_id`` is to use now (a gateway serving many agents asks per agent)."""
        number = self.version_for(model_id, agent_id)
        return None if number is None else self.versions[model_id][number]

    def version_for(self, model_id: str, agent_id: str | None = None) -> int | None:
        """The version number an agent (default: this subscriber's) is to use (``None``: none known yet)."""
        agent_id = agent_id or self.agent_id
        known = self.versions.get(model_id, {})
        aliases = self.aliases.get(model_id)
        wanted = aliases.version_for(cohort(agent_id, model_id) if agent_id else None) if aliases else None
        if wanted in known:
            return wanted
        if aliases is not None and aliases.champion in known:
            return aliases.champion
        return max(known) if known and (aliases is None or aliases.champion is None) else None

    async def poll(self, timeout_ms: int = 200) -> list[LoadedModel]:
        """Read what has arrived; returns the models whose served version changed."""
        for reader in (self._reader, self._events):
            if not reader.partitions:  # the topic did not exist yet when we started
                await reader.stop()
                await reader.start()
        for msg in await self._reader.poll(timeout_ms // 2):
            self._take_version(msg)
        for msg in await self._events.poll(max(timeout_ms // 2, 1)):
            try:
                event = codec_for("DecisionEvent").decode(msg.value)
            except CodecError:
                continue
            if self.model_ids is None or event["model_id"] in self.model_ids:
                self.aliases.setdefault(event["model_id"], Aliases()).apply(event)
        for mid, aliases in self.aliases.items():  # load what the aliases name (an old version rolled out again)
            for number in (aliases.champion, aliases.canary, *((aliases.ab.a, aliases.ab.b) if aliases.ab else ())):
                if number is not None and number not in self.versions.get(mid, {}) and number in self._records.get(mid, {}):
                    self._load(self._records[mid][number])
        changed = []
        for mid in self.versions:
            number = self.version_for(mid)
            current = self.latest_versions.get(mid)
            if number is not None and (current is None or current.version != number):
                self.latest_versions[mid] = self.versions[mid][number]
                changed.append(self.latest_versions[mid])
            self._prune(mid)
        return changed

    def _take_version(self, msg) -> None:
        try:
            rec = codec_for("ModelVersion").decode(msg.value)
        except CodecError as exc:
            self.rejected.append(f"offset {msg.offset}: {exc}")
            return
        mid = rec["model_id"]
        if (self.model_ids and mid not in self.model_ids) or rec["version"] in self._records.get(mid, {}):
            return
        loaded = self._load(rec)
        if loaded is not None:
            records = self._records.setdefault(mid, {})
            records[rec["version"]] = rec
            for old in sorted(records)[:-256]:
                del records[old]
            self._arrivals.append(loaded)

    def _load(self, rec: dict) -> LoadedModel | None:
        try:
            loaded = load_model_version(rec, self.verifier)
        except (IntegrityError, UnusableVersion) as exc:
            self.rejected.append(str(exc))
            return None
        self.versions.setdefault(rec["model_id"], {})[rec["version"]] = loaded
        return loaded

    def take_arrivals(self) -> list[LoadedModel]:
        """Every verified version read since the last call, served or not (canaries included)."""
        out, self._arrivals = self._arrivals, []
        return out

    def _prune(self, model_id: str) -> None:
        known = self.versions[model_id]
        aliases = self.aliases.get(model_id)
        wanted = set(sorted(known)[-self.keep:])
        if aliases is not None:
            wanted |= {aliases.champion, aliases.canary, aliases.challenger}
            if aliases.ab is not None:
                wanted |= {aliases.ab.a, aliases.ab.b}
        for number in [n for n in known if n not in wanted]:
            del known[number]

    async def updates(self) -> AsyncIterator[LoadedModel]:
        """Every change of the served version, as it happens (forever)."""
        while True:
            for m in await self.poll(500):
                yield m

    async def latest(self, model_id: str, timeout: float = 30.0, min_version: int = 1) -> LoadedModel:
        """Wait until the served version of ``model_id`` is >= ``min_version``, and return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.poll(200)
            m = self.latest_versions.get(model_id)
            if m is not None and m.version >= min_version:
                return m
            if loop.time() > deadline:
                raise TimeoutError(f"no version >= {min_version} of {model_id!r} served on {self.topic} within {timeout}s")
