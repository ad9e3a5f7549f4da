"""Topic reads end at the end offsets taken when they start (batches written in one request
included, which the embedded broker's watermark stops short of), ``replay`` seeks by time, stops
after ``--max-messages`` and follows with ``--follow``; an unreachable broker is one line and exit
code 2 on every command that needs one."""

import asyncio
import json
import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka.topics import TopicReader, end_offsets, read_range

from .conftest import ROOT

BASE_MS = 1_800_000_000_000  # record timestamps the test sets itself: three batches 10 s apart


async def _write(bootstrap: str) -> None:
    """Three batches per partition, each written in one request (one record batch on the log)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for k in range(3):
            for partition in (0, 1):
                batch = producer.create_batch()
                for i in range(10):
                    batch.append(key=None, value=json.dumps({"batch": k, "i": i}).encode(), timestamp=BASE_MS + 10_000 * k + i)
                await (await producer.send_batch(batch, "experiences", partition=partition))
    finally:
        await producer.stop()


def _count(bootstrap: str, **kwargs) -> int:
    async def count() -> int:
        return len([m async for m in read_range(bootstrap, "experiences", **kwargs)])
    return asyncio.run(count())


def test_reads_end_at_the_true_end_of_every_partition(broker):
    asyncio.run(_write(broker.bootstrap))
    assert asyncio.run(end_offsets(broker.bootstrap, "experiences")) == {0: 30, 1: 30}
    assert _count(broker.bootstrap) == 60
    assert _count(broker.bootstrap, first={0: 25, 1: 30}) == 5  # a partition already at its end is not waited on

    async def ends_keep_the_position() -> list[int]:
        async with TopicReader(broker.bootstrap, "experiences", partition=0) as reader:
            await reader.seek(7)
            await reader.ends()
            return [m.offset async for m in reader.read()][:1]
    assert asyncio.run(ends_keep_the_position()) == [7]


def _replay(bootstrap: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--topic", "experiences", "--bootstrap-server",
                           bootstrap, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_replay_seeks_by_time_in_utc_and_stops_after_max_messages(broker):
    asyncio.run(_write(broker.bootstrap))
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((BASE_MS + 10_000) / 1000))  # no zone: UTC
    lines = [json.loads(line) for line in _replay(broker.bootstrap, "--from-time", start).stdout.splitlines()]
    assert len(lines) == 40 and min(line["offset"] for line in lines) == 10  # seeked, not scanned from 0
    assert all(line["timestamp_ms"] >= BASE_MS + 10_000 for line in lines)
    same = _replay(broker.bootstrap, "--from-time", start.replace("T", "T") + "+00:00", "--max-messages", "3")
    assert len(same.stdout.splitlines()) == 3


def test_replay_follow_prints_what_arrives_after_it_started(broker):
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "replay", "--topic", "experiences", "--follow",
                             "--max-messages", "60", "--kafka", broker.bootstrap], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        time.sleep(3)  # the replay has reached the (empty) end and waits
        assert proc.poll() is None
        asyncio.run(_write(broker.bootstrap))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and len(out.splitlines()) == 60, err[-2000:]


@pytest.mark.parametrize("command", [["models", "ls"], ["replay", "--topic", "events"], ["rollout", "status", "sine"],
                                     ["audit", "sine", "1"], ["audit", "rebuild", "sine", "1"]])
def test_an_unreachable_broker_is_one_line_and_exit_code_2(command):
    proc = subprocess.run([sys.executable, "-m", "streams.cli", *command, "--bootstrap-server", "127.0.0.1:1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(said) == 1 and "cannot reach the Kafka broker" in said[0], proc.stderr[-2000:]
