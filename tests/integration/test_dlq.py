"""Malformed and hostile messages, interleaved with good ones, all land in the DLQ with their
reasons and original bytes, and every good message is still processed."""

import asyncio
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
from aiokafka import AIOKafkaProducer

from schemas import codec_for
from schemas.experiences import make_batch_record
from streams.kafka.topics import read_range
from tests.unit.test_ingest import hostile_messages

from .conftest import ROOT, wait_for

CODEC = codec_for("ExperienceBatch")
LETTERS = codec_for("DeadLetter")


def test_bad_messages_go_to_the_dlq_and_good_ones_are_all_processed(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="100000").start()
    bad = hostile_messages()
    bad["garbage"] = bytes(range(256)) * 4
    bad["empty"] = b""
    good_rows = 0

    async def send():
        nonlocal good_rows
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, enable_idempotence=False)
        await producer.start()
        for i, data in enumerate(bad.values()):
            x = np.random.default_rng(i).uniform(-5, 5, (16, 1)).astype("f4")
            await producer.send_and_wait("experiences", CODEC.encode(make_batch_record("sine", x, np.sin(x), [f"t{i}"] * 16)), key=b"sine")
            good_rows += 16
            await producer.send_and_wait("experiences", data, key=b"sine")
        await producer.stop()

    asyncio.run(send())
    wait_for(lambda: worker.metrics().get("metastream_experiences_ingested_total") == good_rows, 30, "all good rows")
    m = wait_for(lambda: (lambda m: m if m.get("metastream_experiences_rejected_total") == len(bad) else None)(worker.metrics()),
                 30, "all rejections")
    assert m['metastream_experiences_rejected_total{reason="non_finite"}'] == 1
    assert m['metastream_experiences_rejected_total{reason="bad_shape"}'] == sum(k.strip() == "bad_shape" for k in bad)

    async def read_dlq():
        return [LETTERS.decode(msg.value) async for msg in read_range(broker.bootstrap, "experiences.dlq")]

    letters = asyncio.run(read_dlq())
    assert len(letters) == len(bad)
    by_original = {letter["original"]: letter for letter in letters}
    for kind, data in bad.items():
        letter = by_original[data]
        expected = {"garbage": "bad_marker", "empty": "bad_marker"}.get(kind, kind.strip())
        assert letter["error_kind"] == expected, (kind, letter["message"])
        assert letter["source_topic"] == "experiences" and letter["message"]
    assert worker.proc.poll() is None  # still alive
    # an operator reads the dead letters as plain JSON: the key as text, the original summarised
    env = {**os.environ, "METASTREAM_KAFKA": broker.bootstrap, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--topic", "experiences.dlq"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=60).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == len(bad) and {line["type"] for line in lines} == {"DeadLetter"}
    assert {line["value"]["original_key"] for line in lines} == {"sine"}
    assert all(len(line["value"]["original"]["sha256"]) == 64 for line in lines)


def test_a_5_mb_message_is_dead_lettered_in_brief_and_the_agent_goes_on(broker, worker_factory):
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="100000").start()
    huge = CODEC.encode(make_batch_record("sine", np.zeros((1, 1), "f4"), np.zeros((1, 1), "f4"), ["t"])) + bytes(5_000_000)
    x = np.linspace(-5, 5, 16, dtype="f4")[:, None]

    async def send():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, enable_idempotence=False,
                                    max_request_size=8_000_000)
        await producer.start()
        await producer.send_and_wait("experiences", huge, key=b"sine")
        await producer.send_and_wait("experiences", CODEC.encode(make_batch_record("sine", x, np.sin(x), ["after"] * 16)), key=b"sine")
        await producer.stop()

    asyncio.run(send())
    wait_for(lambda: worker.metrics().get("metastream_experiences_ingested_total") == 16, 60, "the batch after the big one")

    async def read_dlq():
        return [LETTERS.decode(msg.value) async for msg in read_range(broker.bootstrap, "experiences.dlq")]

    [letter] = wait_for(lambda: asyncio.run(read_dlq()) or None, 30, "the dead letter")
    assert letter["error_kind"] == "oversize" and letter["truncated"] and letter["original_length"] == len(huge)
    assert letter["original"] == huge[:len(letter["original"])] and letter["source_offset"] == 0
    assert letter["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert worker.proc.poll() is None
