"""Signed versions end to end: a worker with a signing key publishes signed versions; a subscriber
that trusts its public key loads them, and rejects, with the reason, a copy tampered with on the
topic (one byte of its config flipped) and a copy re-signed with another key."""

import asyncio

from aiokafka import AIOKafkaProducer

from schemas import codec_for
from streams.client import ModelSubscriber
from streams.simulation.fleet import SineFleet
from streams.records.signing import Signer
from streams.kafka.topics import read_records

from .conftest import publish_rounds, wait_for

VERSIONS = codec_for("ModelVersion")


def test_a_subscriber_loads_signed_versions_and_rejects_tampered_and_foreign_ones(broker, worker_factory, tmp_path):
    key, other = Signer.generate(), Signer.generate()
    (tmp_path / "signing.pem").write_bytes(key.private_pem())
    (tmp_path / "verify.pem").write_bytes(key.public_pem())
    worker = worker_factory(METASTREAM_NEW_TASKS_TRIGGER="30", METASTREAM_SIGNING_KEY=str(tmp_path / "signing.pem")).start()
    publish_rounds(broker.bootstrap, SineFleet(seed=2), "sine", rounds=3, drift_from=99)
    wait_for(lambda: worker.metrics().get("metastream_versions_published_total", 0) >= 1, 60, "a published version")
    [(_, record), *_] = asyncio.run(read_records(broker.bootstrap, "models", "ModelVersion"))
    assert record["key_id"] == key.key_id and len(record["signature"]) == 64

    config = bytearray(record["config_json"].encode())
    config[config.index(b"inner_lr") + 3] ^= 1  # one byte of the metadata, after signing (the weights' hash still holds)
    tampered = {**record, "version": 1000, "config_json": config.decode()}
    foreign = {**record, "version": 1001}
    foreign.update(other.sign(foreign))

    async def inject_and_read():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        for rec in (tampered, foreign):
            await producer.send_and_wait("models", VERSIONS.encode(rec), key=b"sine")
        await producer.stop()
        async with ModelSubscriber(broker.bootstrap, model_ids=["sine"], verify_keys=[str(tmp_path / "verify.pem")]) as sub:
            for _ in range(30):
                await sub.poll(300)
                if len(sub.rejected) >= 2:
                    break
            unsigned_sub = ModelSubscriber(broker.bootstrap, model_ids=["sine"], verify_keys=[other.public_pem()])
            await unsigned_sub.start()
            for _ in range(30):
                await unsigned_sub.poll(300)
                if unsigned_sub.rejected:
                    break
            await unsigned_sub.stop()
            return sub, unsigned_sub

    sub, strict = asyncio.run(inject_and_read())
    assert record["version"] in sub.versions["sine"]  # the worker's own, signed
    assert 1000 not in sub.versions["sine"] and 1001 not in sub.versions["sine"]
    reasons = " | ".join(sub.rejected)
    assert "v1000: its signature does not verify" in reasons, reasons
    assert f"v1001: it is signed by key {other.key_id}, which is not trusted" in reasons, reasons
    assert any(f"v{record['version']}: it is signed by key {key.key_id}" in r for r in strict.rejected)  # the key decides
