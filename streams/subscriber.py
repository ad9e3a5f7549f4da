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
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from learners.base import MetaLearner
from learners.registry import build_learner
from schemas import CodecError, codec_for

from .topics import TopicReader


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
        x = torch.as_tensor(np.asarray(support_x, dtype="f4"))
        y = torch.as_tensor(np.asarray(support_y, dtype="f4"))
        if self.learner.kind == "classification":
            y = y.reshape(-1).long()
        return self.learner.adapt(x, y, steps)

    def predict(self, adapted, query_x) -> torch.Tensor:
        return self.learner.predict(adapted, torch.as_tensor(np.asarray(query_x, dtype="f4")))


def load_model_version(record: dict[str, Any]) -> LoadedModel:
    """Verify a ModelVersion record's sha256 and load its safetensors weights into a fresh learner.
    Raises :class:`IntegrityError` or :class:`UnusableVersion`, saying why."""
    name = f"{record['model_id']} v{record['version']}"
    digest = hashlib.sha256(record["weights"]).hexdigest()
    if digest != record["sha256"]:
        raise IntegrityError(f"{name}: weights sha256 {digest[:12]}… does not match {record['sha256'][:12]}…")
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
    """Follows the ``models`` topic from the beginning and keeps the latest verified version per
    model id (duplicates and older versions, which at-least-once delivery can bring, are skipped;
    what fails verification is listed in :attr:`rejected` with the reason)."""

    def __init__(self, bootstrap: str, topic: str = "models", model_ids: Sequence[str] | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.model_ids = set(model_ids) if model_ids else None
        self.latest_versions: dict[str, LoadedModel] = {}
        self.rejected: list[str] = []
        self._reader = TopicReader(bootstrap, topic)

    async def start(self) -> "ModelSubscriber":
        await self._reader.start()
        return self

    async def stop(self) -> None:
        await self._reader.stop()

    async def __aenter__(self) -> "ModelSubscriber":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def poll(self, timeout_ms: int = 200) -> list[LoadedModel]:
        """Read what has arrived; returns the new latest versions it found."""
        if not self._reader.partitions:  # the topic did not exist yet when we started
            await self._reader.stop()
            await self._reader.start()
        new = []
        for msg in await self._reader.poll(timeout_ms):
            try:
                rec = codec_for("ModelVersion").decode(msg.value)
            except CodecError as exc:
                self.rejected.append(f"offset {msg.offset}: {exc}")
                continue
            mid = rec["model_id"]
            if self.model_ids and mid not in self.model_ids:
                continue
            current = self.latest_versions.get(mid)
            if current is not None and rec["version"] <= current.version:
                continue
            try:
                loaded = load_model_version(rec)
            except (IntegrityError, UnusableVersion) as exc:
                self.rejected.append(str(exc))
                continue
            self.latest_versions[mid] = loaded
            new.append(loaded)
        return new

    async def updates(self) -> AsyncIterator[LoadedModel]:
        """Every new latest version, as it arrives (forever)."""
        while True:
            for m in await self.poll(500):
                yield m

    async def latest(self, model_id: str, timeout: float = 30.0, min_version: int = 1) -> LoadedModel:
        """Wait until a version >= ``min_version`` of ``model_id`` is known, and return the latest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.poll(200)
            m = self.latest_versions.get(model_id)
            if m is not None and m.version >= min_version:
                return m
            if loop.time() > deadline:
                raise TimeoutError(f"no version >= {min_version} of {model_id!r} on {self.topic} within {timeout}s")
