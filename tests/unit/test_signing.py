from types import SimpleNamespace

import pytest

from learners.errors import ConfigError
from learners.online import EraScore, OnlineMetaLearner
from schemas import codec_for
from streams.records.wire import model_version
from streams.settings import Settings
from streams.records.signing import Signer, Verifier
from streams.client.subscriber import ModelSubscriber


def _version(signer=None, number=1) -> bytes:
    learner = OnlineMetaLearner(Settings.of(metrics_port=0).catalog.models["sine"], seed=0)
    return model_version("sine", number, None, learner.config["algo"], learner.weights_bytes(), learner.config, {"loss": 0.5},
                         [{"topic": "experiences", "partition": 0, "start_offset": 0, "end_offset": 9}], {0: EraScore(80.0, 81.0, 79.0)}, signer=signer)


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


def _signed_under(writer, key, extra=None) -> bytes:
    """A version written and signed the way a worker on the older schema ``writer`` did: its fields
    only, the signature over its own fingerprint and body."""
    from streams.records.signing import signed_bytes

    names = {f["name"] for f in writer["fields"]}
    record = {k: v for k, v in codec_for("ModelVersion").decode(_version()).items() if k in names}
    record.update(extra or {})
    record.update(signature=key.private.sign(signed_bytes(record, writer)), key_id=key.key_id)
    return codec_for("ModelVersion").encode(record, writer_schema=writer)


def test_a_version_signed_under_an_older_schema_verifies_with_the_current_reader():
    from schemas import history_schema

    key = Signer.generate()
    old = history_schema("ModelVersion", 3)  # before recipe_json
    record = codec_for("ModelVersion").decode(_signed_under(old, key))
    assert record["recipe_json"] == ""  # filled in by the reader
    assert Verifier([key.public_pem()]).check(record) is None
    strict = ModelSubscriber("127.0.0.1:1", verify_keys=[key.public_pem()])
    assert [m.version for m in _take(strict, _signed_under(old, key))] == [1]


def test_a_field_added_later_cannot_be_forged_under_an_old_signature():
    from schemas import history_schema

    key = Signer.generate()
    record = codec_for("ModelVersion").decode(_signed_under(history_schema("ModelVersion", 3), key))
    forged = {**record, "recipe_json": '{"trials": 1}'}  # rewritten with the current schema by someone else
    assert Verifier([key.public_pem()]).check(forged) == "its signature does not verify (tampered after signing)"
    record = codec_for("ModelVersion").decode(_signed_under(history_schema("ModelVersion", 4), key))
    assert record["era_halves"] == [] and Verifier([key.public_pem()]).check(record) is None
    forged = {**record, "era_halves": [{"era": 0, "select": 99.0, "held": 99.0}]}  # a best no version had
    assert Verifier([key.public_pem()]).check(forged) == "its signature does not verify (tampered after signing)"
    changed = {**record, "sha256": "0" * 64}
    assert Verifier([key.public_pem()]).check(changed) == "its signature does not verify (tampered after signing)"


def test_versions_signed_over_sorted_json_still_verify():
    """What workers signed before signatures covered the Avro bytes: sorted JSON of the fields."""
    from schemas import history_schema
    from streams.records.signing import legacy_bytes

    key = Signer.generate()
    writer = history_schema("ModelVersion", 3)
    names = {f["name"] for f in writer["fields"]}
    record = {k: v for k, v in codec_for("ModelVersion").decode(_version()).items() if k in names}
    record.update(signature=key.private.sign(legacy_bytes(record, writer)), key_id=key.key_id)
    decoded = codec_for("ModelVersion").decode(codec_for("ModelVersion").encode(record, writer_schema=writer))
    assert Verifier([key.public_pem()]).check(decoded) is None
    assert Verifier([key.public_pem()]).check({**decoded, "config_json": "{}"}) is not None
