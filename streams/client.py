"""Client SDK: agents publish experiences with :class:`ExperiencePublisher`; consumers follow model
versions with :class:`ModelSubscriber`, which verifies sha256 and loads safetensors (never pickles).

    async with ExperiencePublisher("127.0.0.1:9092", agent_id="a1") as pub:
        await pub.publish("sine", features=[[0.3]], targets=[[1.2]], task_ids=["task-7"])

    async with ModelSubscriber("127.0.0.1:9092") as sub:
        model = await sub.latest("sine")            # or: async for model in sub.updates(): ...
        adapted = model.adapt(support_x, support_y)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Sequence

import numpy as np
import torch
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from safetensors.torch import load as load_safetensors

from learners.base import MetaLearner
from learners.registry import build_learner
from schemas import AvroCodec
from schemas.experiences import make_batch_record

EXPERIENCES = AvroCodec("ExperienceBatch")
MODEL_VERSIONS = AvroCodec("ModelVersion")


class ExperiencePublisher:
    """Batches experiences per model id (up to ``batch_size`` rows, or ``linger_ms``) into one
    ExperienceBatch message keyed by model id. At-least-once: each experience has an event id,
    so the workers can drop re-sent ones."""

    def __init__(self, bootstrap: str, topic: str = "experiences", agent_id: str | None = None, agent_type: str = "agent",
                 batch_size: int = 64, linger_ms: float = 50.0) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.agent_id = agent_id or f"agent-{uuid.uuid4().hex[:8]}"
        self.agent_type = agent_type
        self.batch_size, self.linger_ms = batch_size, linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._pending: dict[str, list[tuple]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.sent_messages = 0

    async def start(self) -> "ExperiencePublisher":
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks=1, enable_idempotence=False, linger_ms=5)
        await self._producer.start()
        return self

    async def stop(self) -> None:
        await self.flush()
        if self._producer:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> "ExperiencePublisher":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def publish(self, model_id: str, features, targets, task_ids: Sequence[str], *, predictions=None, losses=None,
                      event_ids: Sequence[str] | None = None, timestamps_ms: Sequence[int] | None = None) -> list[str]:
        """Queue rows (``features [n, d]``, ``targets [n, t]``); returns their event ids."""
        f = np.asarray(features, dtype="f4").reshape(len(task_ids), -1)
        t = np.asarray(targets, dtype="f4").reshape(len(task_ids), -1)
        ids = list(event_ids) if event_ids is not None else [uuid.uuid4().hex for _ in task_ids]
        ts = list(timestamps_ms) if timestamps_ms is not None else [_now_ms()] * len(ids)
        p = None if predictions is None else np.asarray(predictions, dtype="f4").reshape(len(ids), -1)
        l = None if losses is None else np.asarray(losses, dtype="f4").reshape(len(ids))
        pending = self._pending.setdefault(model_id, [])
        for i in range(len(ids)):
            pending.append((f[i], t[i], task_ids[i], ids[i], ts[i], None if p is None else p[i], None if l is None else l[i]))
        while len(pending) >= self.batch_size:
            await self._send(model_id, pending[: self.batch_size])
            del pending[: self.batch_size]
        if pending and model_id not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[model_id] = loop.call_later(self.linger_ms / 1000, lambda: asyncio.ensure_future(self._linger(model_id)))
        return ids

    async def _linger(self, model_id: str) -> None:
        self._timers.pop(model_id, None)
        rows = self._pending.pop(model_id, [])
        if rows:
            await self._send(model_id, rows)

    async def flush(self) -> None:
        for mid in list(self._pending):
            timer = self._timers.pop(mid, None)
            if timer:
                timer.cancel()
            rows = self._pending.pop(mid, [])
            if rows:
                await self._send(mid, rows)
        if self._producer:
            await self._producer.flush()

    async def _send(self, model_id: str, rows: list[tuple]) -> None:
        if self._producer is None:
            raise RuntimeError("publisher not started: use 'async with ExperiencePublisher(...)' or await start()")
        has_p = all(r[5] is not None for r in rows)
        has_l = all(r[6] is not None for r in rows)
        record = make_batch_record(
            model_id, np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]), [r[2] for r in rows],
            agent_id=self.agent_id, agent_type=self.agent_type, event_ids=[r[3] for r in rows],
            timestamps_ms=[r[4] for r in rows], predictions=np.stack([r[5] for r in rows]) if has_p else None,
            losses=np.array([r[6] for r in rows], "f4") if has_l else None)
        await self._producer.send(self.topic, EXPERIENCES.encode(record), key=model_id.encode())
        self.sent_messages += 1


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


class SyncExperiencePublisher:
    """The same publisher for code without an event loop: runs one in a background thread."""

    def __init__(self, *args, **kwargs) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._pub = ExperiencePublisher(*args, **kwargs)
        self._call(self._pub.start())

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def publish(self, *args, **kwargs) -> list[str]:
        return self._call(self._pub.publish(*args, **kwargs))

    def flush(self) -> None:
        self._call(self._pub.flush())

    def close(self) -> None:
        self._call(self._pub.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class IntegrityError(ValueError):
    """A model version whose weights do not match their sha256."""


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
    """Verify a ModelVersion record's sha256 and load its safetensors weights into a fresh learner."""
    digest = hashlib.sha256(record["weights"]).hexdigest()
    if digest != record["sha256"]:
        raise IntegrityError(f"{record['model_id']} v{record['version']}: weights sha256 {digest[:12]}… does not match {record['sha256'][:12]}…")
    learner = build_learner(json.loads(record["config_json"]))
    learner.model.load_state_dict(load_safetensors(record["weights"]))  # safetensors: data only, nothing executed
    learner.model.eval()
    return LoadedModel(record["model_id"], record["version"], record["parent_version"], learner, dict(record["metrics"]),
                       list(record["lineage"]), record["created_at_ms"], record)


class ModelSubscriber:
    """Follows the ``models`` topic from the beginning and keeps the latest verified version per
    model id (duplicates and older versions, which at-least-once delivery can bring, are skipped)."""

    def __init__(self, bootstrap: str, topic: str = "models", model_ids: Sequence[str] | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.model_ids = set(model_ids) if model_ids else None
        self.latest_versions: dict[str, LoadedModel] = {}
        self.rejected: list[str] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> "ModelSubscriber":
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                          auto_offset_reset="earliest")
        await self._consumer.start()
        parts = self._consumer.partitions_for_topic(self.topic)
        if not parts:
            await self._consumer.topics()
            parts = self._consumer.partitions_for_topic(self.topic) or {0}
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        return self

    async def stop(self) -> None:
        if self._consumer:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> "ModelSubscriber":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def poll(self, timeout_ms: int = 200) -> list[LoadedModel]:
        """Read what has arrived; returns the new latest versions it found."""
        batch = await self._consumer.getmany(timeout_ms=timeout_ms)
        new = []
        for msgs in batch.values():
            for msg in msgs:
                try:
                    rec = MODEL_VERSIONS.decode(msg.value)
                except Exception as exc:  # noqa: BLE001 - never load what cannot be read
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
                except (IntegrityError, Exception) as exc:  # noqa: BLE001
                    self.rejected.append(f"{mid} v{rec['version']}: {exc}")
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
