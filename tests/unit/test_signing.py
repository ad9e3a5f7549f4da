from types import SimpleNamespace

import pytest

from learners.errors import ConfigError
from learners.online import OnlineMetaLearner
from schemas import codec_for
from streams.records.wire import model_version
from streams.settings import Settings
from streams.records.signing import Signer, Verifier
from streams.client.subscriber import ModelSubscriber


def _version(signer=None, number=1) -> bytes:
    learner = OnlineMetaLearner(Settings.of(metrics_port=0).catalog.models["sine"], seed=0)
    return model_version("sine", number, None, learner.config["algo"], learner.weights_bytes(), learner.config, {"loss": 0.5},
                         [{"topic": "experiences", "partition": 0, "start_offset": 0, "end_offset": 9}], {0: 80.0}, signer=signer)


def _take(sub: ModelSubscriber, value: bytes) -> list:
    sub._take_version(SimpleNamespace(value=value, offset=0))
    return sub.take_arrivals()


def test_a_signed_version_loads_and_unsigned_or_foreign_ones_are_rejected_with_the_reason():
    key, other = Signer.generate(), Signer.generate()
    strict = ModelSubscriber("127.0.0.1:1", verify_keys=[key.public_pem()])
    assert [m.version for m in _take(strict, _version(key, 1))] == [1]
    assert _take(strict, _version(None, 2)) == [] and "v2: it is unsigned" in strict.rejected[-1]
    assert _take(strict, _version(other, 3)) == [] and f"signed by key {other.key_id}" in strict.rejected[-1]
    record = codec_for("ModelVersion").decode(_version(key, 4))
    record["metrics"]["loss"] = 0.1  # a better-looking figure, after signing
    assert _take(strict, codec_for("ModelVersion").encode(record)) == [] and "does not verify" in strict.rejected[-1]
    lenient = ModelSubscriber("127.0.0.1:1", verify_keys=[])  # no key: signatures are not checked
    assert len(_take(lenient, _version(None, 5))) == 1


def test_keys_come_from_settings_with_errors_that_say_what_to_do(tmp_path):
    assert Settings.of(metrics_port=0).signer() is None and Verifier.from_paths("") is None
    key = Signer.generate()
    (tmp_path / "s.pem").write_bytes(key.private_pem())
    (tmp_path / "v.pem").write_bytes(key.public_pem())
    assert Settings.of(signing_key=str(tmp_path / "s.pem")).signer().key_id == key.key_id
    assert key.key_id in Verifier.from_paths(f" {tmp_path / 'v.pem'} ,").keys
    with pytest.raises(ConfigError, match="metastream keys generate"):
        Settings.of(signing_key=str(tmp_path / "v.pem")).signer()  # a public key where the private one goes
    with pytest.raises(ConfigError, match="cannot read the verify key"):
        Verifier([str(tmp_path / "missing.pem")])


def test_an_old_unsigned_record_still_reads():
    from schemas import history_schema

    record = codec_for("ModelVersion").decode(_version())
    old = {k: v for k, v in record.items() if k not in ("signature", "key_id")}
    decoded = codec_for("ModelVersion").decode(codec_for("ModelVersion").encode(old, writer_schema=history_schema("ModelVersion", 2)))
    assert not decoded["signature"] and decoded["key_id"] == ""  # (fastavro fills a bytes default in as "")
