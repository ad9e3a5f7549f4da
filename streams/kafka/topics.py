"""The one way metastream reads a topic: a consumer assigned to every partition (no group, so
reading changes no committed offset), positioned at the beginning, at given offsets or at a time,
that reads up to the end offsets taken when the read starts (or follows the topic).

The end of a partition is its high watermark, found with ListOffsets. The embedded broker (Tansu)
reports as its watermark the offset after the *first* record of the partition's last batch, not
after its last record; :meth:`TopicReader.ends` reads that last batch to find its true end, which
on any other broker is the watermark itself (the probe costs one fetch per partition).
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
        try:
            await self._consumer.start()
        except BaseException:  # an unreachable broker: close what was opened, the caller says why
            await self.stop()
            raise
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

    async def ends(self, probe_ms: int = 2000) -> dict[int, int]:
        """The offset after the last record of each partition now. The watermark, moved past the
        last batch where the broker's watermark stops at that batch's first record (see the
        module's docstring); the reader's positions are kept."""
        if not self.partitions:
            return {}
        consumer = self._consumer
        positions = {tp: await consumer.position(tp) for tp in self.partitions}
        watermarks, starts = await asyncio.gather(consumer.end_offsets(self.partitions),
                                                  consumer.beginning_offsets(self.partitions))
        ends = {tp.partition: watermarks[tp] for tp in self.partitions}
        for tp in self.partitions:
            if watermarks[tp] <= starts[tp]:  # empty, or every record deleted
                continue
            consumer.seek(tp, watermarks[tp] - 1)
            batch = await consumer.getmany(tp, timeout_ms=probe_ms, max_records=100_000)
            msgs = batch.get(tp, [])
            if msgs:
                ends[tp.partition] = max(ends[tp.partition], msgs[-1].offset + 1)
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        return ends

    async def position(self, tp: TopicPartition) -> int:
        """The offset the next read of ``tp`` starts at."""
        return await self._consumer.position(tp)

    async def seek_to_time(self, timestamp_ms: int) -> None:
        """Start every partition at its first message written at or after ``timestamp_ms`` (at its
        end where there is none)."""
        found = await self._consumer.offsets_for_times({tp: timestamp_ms for tp in self.partitions})
        ends = await self.ends()
        for tp in self.partitions:
            at = found.get(tp)
            self._consumer.seek(tp, at.offset if at is not None else ends[tp.partition])

    async def read(self, stops: dict[int, int] | None = None, follow: bool = False,
                   idle_ms: int = 500) -> AsyncIterator[ConsumerRecord]:
        """Messages from the current position up to ``stops`` (partition -> offset, exclusive; by
        default the :meth:`ends` when the read starts), or every message as it comes (``follow``:
        the read ends when the caller stops iterating). ``idle_ms``: how long one fetch waits."""
        if stops is None and not follow:
            stops = await self.ends()
        todo = set(self.partitions)
        if stops is not None:
            todo = {tp for tp in todo if stops.get(tp.partition, 0) > await self._consumer.position(tp)}
        while todo:
            batch = await self._consumer.getmany(*todo, timeout_ms=idle_ms, max_records=2000)
            for tp, msgs in batch.items():
                for msg in msgs:
                    if stops is not None and msg.offset >= stops[tp.partition]:
                        todo.discard(tp)
                        break
                    yield msg
                if stops is not None and msgs and msgs[-1].offset + 1 >= stops[tp.partition]:
                    todo.discard(tp)


async def read_range(bootstrap: str, topic: str, stops: dict[int, int] | None = None,
                     first: int | dict[int, int] | None = None, partition: int | None = None) -> AsyncIterator[ConsumerRecord]:
    """Messages of ``topic`` from ``first`` (an offset, or one per partition; default: the
    beginning) up to ``stops`` (default: the end when the read starts)."""
    async with TopicReader(bootstrap, topic, partition) as reader:
        if first is not None:
            await reader.seek(first)
        async for msg in reader.read(stops):
            yield msg


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The offset after the last record, per partition of ``topic``."""
    async with TopicReader(bootstrap, topic) as reader:
        return await reader.ends()


async def partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions ``topic`` has (0 when it does not exist)."""
    async with TopicReader(bootstrap, topic) as reader:
        return len(reader.partitions)


async def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """The consumer group's committed offset per partition of ``topic`` (0 where none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **client_options())
    try:
        await consumer.start()
        await consumer.topics()
        out = {}
        for p in sorted(consumer.partitions_for_topic(topic) or ()):
            out[p] = await consumer.committed(TopicPartition(topic, p)) or 0
        return out
    finally:
        await consumer.stop()


async def read_records(bootstrap: str, topic: str, record_type: str, first: dict[int, int] | None = None) -> list[tuple[ConsumerRecord, dict]]:
    """Every record of ``record_type`` on ``topic`` now, decoded, with its message; a message that
    does not decode as that type is skipped (a reader never loads what it cannot read)."""
    from schemas import CodecError, codec_for

    codec, out = codec_for(record_type), []
    async for msg in read_range(bootstrap, topic, first=first):
        try:
            out.append((msg, codec.decode(msg.value)))
        except CodecError:
            continue
    return out
