"""The one way metastream reads a topic: a consumer assigned to every partition (no group, so
reading changes no committed offset), positioned at the beginning or at given offsets, that reads
up to given offsets or until the topic is idle.

The end is found by reading rather than from ListOffsets: the embedded broker reports a high
watermark that can lag the records it serves, and reading is right on any broker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from streams.kafka.connection import client_options

log = logging.getLogger(__name__)


class TopicNotFound(LookupError):
    """The topic does not exist on the broker."""


class TopicReader:
    """``async with TopicReader(bootstrap, "models") as reader: async for msg in reader.read(): ...``"""

    def __init__(self, bootstrap: str, topic: str, partition: int | None = None) -> None:
        self.bootstrap, self.topic, self.partition = bootstrap, topic, partition
        self._consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []

    async def start(self, must_exist: bool = False) -> "TopicReader":
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                          auto_offset_reset="earliest", **client_options())
        await self._consumer.start()
        await self._consumer.topics()
        parts = sorted(self._consumer.partitions_for_topic(self.topic) or ())
        if not parts and must_exist:
            await self.stop()
            raise TopicNotFound(f"topic {self.topic!r} does not exist on {self.bootstrap}")
        self.partitions = [TopicPartition(self.topic, p) for p in parts if self.partition is None or p == self.partition]
        if self.partitions:
            self._consumer.assign(self.partitions)
            await self._consumer.seek_to_beginning(*self.partitions)
        return self

    async def stop(self) -> None:
        """Stop the consumer. aiokafka's fetcher, closed while it backs off after a timed-out fetch
        (a busy broker), lets the CancelledError of its own backoff out of ``stop``; that one is
        not ours and is logged, while a cancellation of the task calling ``stop`` still propagates."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                await consumer.stop()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                log.warning("the %s reader's consumer stopped while a fetch was backing off", self.topic)

    async def __aenter__(self) -> "TopicReader":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def seek(self, first: int | dict[int, int]) -> None:
        """Start every partition at ``first`` (or per partition, ``{partition: offset}``; a partition
        not named starts at its beginning), or at its earliest offset if that is later."""
        starts = await self._consumer.beginning_offsets(self.partitions)
        for tp in self.partitions:
            wanted = first.get(tp.partition, 0) if isinstance(first, dict) else first
            self._consumer.seek(tp, max(wanted, starts[tp]))

    async def poll(self, timeout_ms: int = 200, max_records: int = 2000) -> list[ConsumerRecord]:
        """Whatever has arrived on any partition within ``timeout_ms``."""
        if not self.partitions:
            return []
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [msg for msgs in batch.values() for msg in msgs]

    async def read(self, stops: dict[int, int] | None = None, idle_ms: int = 600,
                   end_when_idle: bool | None = None) -> AsyncIterator[ConsumerRecord]:
        """Messages from the current position up to ``stops`` (partition -> offset, exclusive), or
        until no message has arrived for ``idle_ms`` (by default only when there are no ``stops``:
        offsets known to exist are waited for)."""
        end_when_idle = stops is None if end_when_idle is None else end_when_idle
        todo = {tp for tp in self.partitions if stops is None or stops.get(tp.partition, 0) > 0}
        while todo:
            batch = await self._consumer.getmany(*todo, timeout_ms=idle_ms, max_records=2000)
            if not batch and end_when_idle:
                return
            for tp, msgs in batch.items():
                for msg in msgs:
                    if stops is not None and msg.offset >= stops[tp.partition]:
                        todo.discard(tp)
                        break
                    yield msg
                if stops is not None and msgs and msgs[-1].offset + 1 >= stops[tp.partition]:
                    todo.discard(tp)


async def read_range(bootstrap: str, topic: str, stops: dict[int, int] | None = None, idle_ms: int = 600,
                     first: int | dict[int, int] | None = None, partition: int | None = None) -> AsyncIterator[ConsumerRecord]:
    """Messages of ``topic`` from ``first`` (an offset, or one per partition; default: the
    beginning) up to ``stops`` or until idle."""
    if isinstance(first, dict) and stops is not None:  # nothing to read where a partition starts at its stop
        stops = {p: (o if o > first.get(p, 0) else 0) for p, o in stops.items()}
    async with TopicReader(bootstrap, topic, partition) as reader:
        if first is not None:
            await reader.seek(first)
        async for msg in reader.read(stops, idle_ms):
            yield msg


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset to be written, per partition of ``topic``."""
    async with TopicReader(bootstrap, topic) as reader:
        if not reader.partitions:
            return {}
        ends = await reader._consumer.end_offsets(reader.partitions)
        return {tp.partition: offset for tp, offset in ends.items()}


async def partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions ``topic`` has (0 when it does not exist)."""
    async with TopicReader(bootstrap, topic) as reader:
        return len(reader.partitions)


async def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """The consumer group's committed offset per partition of ``topic`` (0 where none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **client_options())
    await consumer.start()
    try:
        await consumer.topics()
        out = {}
        for p in sorted(consumer.partitions_for_topic(topic) or ()):
            out[p] = await consumer.committed(TopicPartition(topic, p)) or 0
        return out
    finally:
        await consumer.stop()


async def read_records(bootstrap: str, topic: str, record_type: str, idle_ms: int = 600,
                       first: dict[int, int] | None = None) -> list[tuple[ConsumerRecord, dict]]:
    """Every record of ``record_type`` on ``topic`` now, decoded, with its message; a message that
    does not decode as that type is skipped (a reader never loads what it cannot read)."""
    from schemas import CodecError, codec_for

    codec, out = codec_for(record_type), []
    async for msg in read_range(bootstrap, topic, idle_ms=idle_ms, first=first):
        try:
            out.append((msg, codec.decode(msg.value)))
        except CodecError:
            continue
    return out
