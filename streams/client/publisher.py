"""The agents' half of the client SDK: :class:`ExperiencePublisher` batches experiences into
``ExperienceBatch`` messages. It needs numpy, aiokafka and fastavro, not torch, so an agent that
only reports what it saw stays small.

    async with ExperiencePublisher("127.0.0.1:9092", agent_id="a1") as pub:
        await pub.publish("sine", features=[[0.3]], targets=[[1.2]], task_ids=["task-7"])
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Sequence

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from learners.errors import ConfigError
from schemas import codec_for
from schemas.experiences import check_ids, make_batch_record

from streams.kafka.connection import principal


RETRY_S = 1.0  # a lingering batch the broker did not take is sent again this much later


class ExperiencePublisher:
    """Batches experiences per model id (up to ``batch_size`` rows, or ``linger_ms``) into one
    ExperienceBatch message keyed by model id. At-least-once: each experience has an event id,
    so the workers can drop re-sent ones."""

    def __init__(self, bootstrap: str, topic: str = "experiences", agent_id: str | None = None, agent_type: str = "agent",
                 batch_size: int = 64, linger_ms: float = 50.0) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.principal = principal()  # with SASL on, the agent is who the broker knows it as
        self.agent_id = self._as_principal(agent_id) or f"agent-{uuid.uuid4().hex[:8]}"
        self.agent_type = agent_type
        self.batch_size, self.linger_ms = batch_size, linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._pending: dict[tuple[str, int | None, str], list[tuple]] = {}  # (model id, serving version, agent) -> rows
        self._timers: dict[tuple[str, int | None, str], asyncio.TimerHandle] = {}
        self._lingering: set[asyncio.Task] = set()  # sends a linger timer started: flush waits for them
        self.sent_messages = 0
        self.send_retries = 0  # lingering batches the broker did not take in time, kept and sent again

    def _as_principal(self, agent_id: str | None) -> str | None:
        """With SASL on, the agent id is the SASL user: another id is refused, none means that user."""
        if self.principal and agent_id not in (None, self.principal):
            raise ConfigError(f"agent {agent_id!r} cannot publish as SASL user {self.principal!r}: with SASL on an agent's "
                              "id is its principal (give each agent its own Kafka user)")
        return self.principal or agent_id

    async def start(self) -> "ExperiencePublisher":
        from streams.kafka.connection import client_options
        from streams.kafka.durability import producer_options

        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, **await producer_options(self.bootstrap),
                                          **client_options())
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
                      event_ids: Sequence[str] | None = None, timestamps_ms: Sequence[int] | None = None,
                      model_version: int | None = None, latencies_ms=None, agent_id: str | None = None) -> list[str]:
        """Queue rows (``features [n, d]``, ``targets [n, t]``); returns their event ids.

        ``model_version`` names the version whose predictions (``predictions``, ``losses``) these
        rows report, and ``latencies_ms`` how long each prediction took: from these the workers
        judge a rollout on what production sees. Rows of different versions go in different batches.
        ``agent_id`` publishes on behalf of another agent (a gateway or a simulator of many)."""
        n = len(task_ids)
        f = np.asarray(features, dtype="f4").reshape(n, -1)
        t = np.asarray(targets, dtype="f4").reshape(n, -1)
        ids = list(event_ids) if event_ids is not None else [uuid.uuid4().hex for _ in task_ids]
        ts = list(timestamps_ms) if timestamps_ms is not None else [_now_ms()] * n
        check_ids("event id", ids)
        check_ids("task id", [str(i) for i in task_ids])
        p = None if predictions is None else np.asarray(predictions, dtype="f4").reshape(n, -1)
        l = None if losses is None else np.asarray(losses, dtype="f4").reshape(n)
        lat = None if latencies_ms is None else np.asarray(latencies_ms, dtype="f4").reshape(n)
        key = (model_id, model_version, self._as_principal(agent_id) or self.agent_id)
        pending = self._pending.setdefault(key, [])
        for i in range(n):
            pending.append((f[i], t[i], task_ids[i], ids[i], ts[i], None if p is None else p[i], None if l is None else l[i],
                            None if lat is None else lat[i]))
        while len(pending) >= self.batch_size:
            await self._send(key, pending[: self.batch_size])
            del pending[: self.batch_size]
        if pending and key not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(self.linger_ms / 1000, self._start_linger, key)
        return ids

    def _start_linger(self, key: tuple[str, int | None, str]) -> None:
        task = asyncio.ensure_future(self._linger(key))
        self._lingering.add(task)
        task.add_done_callback(self._lingering.discard)

    async def _linger(self, key: tuple[str, int | None, str]) -> None:
        """Send what lingered. No caller waits on this send, so rows the broker does not take in
        time (it is paused or unreachable) go back to the front of their queue and the timer is
        set again, a second later: dropping them here would lose them without a word; ``flush``
        and ``publish`` raise to their caller instead."""
        self._timers.pop(key, None)
        rows = self._pending.pop(key, [])
        if not rows:
            return
        try:
            await self._send(key, rows)
        except KafkaTimeoutError:
            self.send_retries += 1
            self._pending[key] = rows + self._pending.get(key, [])
            if key not in self._timers and self._producer is not None:
                self._timers[key] = asyncio.get_running_loop().call_later(RETRY_S, self._start_linger, key)

    async def flush(self) -> None:
        for key in list(self._pending):
            timer = self._timers.pop(key, None)
            if timer:
                timer.cancel()
            rows = self._pending.pop(key, [])
            if rows:
                await self._send(key, rows)
        if self._lingering:  # a timer fired and its rows are on their way: they go before the producer stops
            await asyncio.gather(*list(self._lingering))
        if self._producer:
            await self._producer.flush()

    async def _send(self, key: tuple[str, int | None, str], rows: list[tuple]) -> None:
        if self._producer is None:
            raise RuntimeError("publisher not started: use 'async with ExperiencePublisher(...)' or await start()")
        model_id, version, agent = key

        def column(i: int, stack=np.stack):
            return stack([r[i] for r in rows]) if all(r[i] is not None for r in rows) else None

        record = make_batch_record(
            model_id, column(0), column(1), [r[2] for r in rows], agent_id=agent, agent_type=self.agent_type,
            event_ids=[r[3] for r in rows], timestamps_ms=[r[4] for r in rows], predictions=column(5),
            losses=column(6, lambda v: np.array(v, "f4")), model_version=version, latencies_ms=column(7, lambda v: np.array(v, "f4")))
        await self._producer.send(self.topic, codec_for("ExperienceBatch").encode(record), key=model_id.encode())
        self.sent_messages += 1


def _now_ms() -> int:
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
