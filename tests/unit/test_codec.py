import pytest

from schemas import AvroCodec, BadMarker, TruncatedBody, UnknownFingerprint, WrongRecordType, history_schema
from schemas.codec import MARKER, schema_fingerprint
from schemas.experiences import id_columns, make_batch_record, unpacked

import numpy as np


def _batch(**kw):
    return make_batch_record("sine", np.zeros((4, 1)), np.ones((4, 1)), ["t"] * 4, **kw)


def test_single_object_encoding_layout_and_round_trip():
    codec = AvroCodec("ExperienceBatch")
    rec = _batch(metadata={"source": "test"})
    data = codec.encode(rec)
    assert data[:2] == MARKER == b"\xc3\x01"
    assert data[2:10] == schema_fingerprint(codec.schema)
    assert codec.decode(data) == rec


def test_a_record_of_the_second_experience_schema_reads_with_no_version_or_latencies():
    codec = AvroCodec("ExperienceBatch")
    old = unpacked(_batch(metadata={"k": "v"}))
    old.pop("model_version"), old.pop("latencies")
    decoded = codec.decode(codec.encode(old, writer_schema=history_schema("ExperienceBatch", 2)))
    assert decoded["model_version"] is None and not decoded["latencies"] and decoded["metadata"] == {"k": "v"}


def test_record_written_with_old_schema_reads_with_current():
    codec = AvroCodec("ExperienceBatch")
    old = unpacked(_batch())
    for added in ("metadata", "model_version", "latencies"):
        old.pop(added)
    data = codec.encode(old, writer_schema=history_schema("ExperienceBatch", 1))
    assert data[2:10] != codec.fingerprint  # really the old writer schema
    decoded = codec.decode(data)
    assert decoded["metadata"] is None
    assert {k: unpacked(decoded)[k] for k in ("event_ids", "task_ids", "timestamps_ms")} == {
        k: old[k] for k in ("event_ids", "task_ids", "timestamps_ms")}


def test_a_third_schema_record_reads_its_id_arrays_and_a_fourth_packs_them():
    """v4 packs the id columns (ids joined by newlines, timestamps as int64 bytes); a v3 writer's
    arrays still come back through ``id_columns``, the same columns either way."""
    codec = AvroCodec("ExperienceBatch")
    rec = _batch(event_ids=["e1", "e2", "e3", "e4"], timestamps_ms=[1, 2, 3, 2**40])
    assert rec["event_ids"] == [] and rec["event_ids_joined"] == "e1\ne2\ne3\ne4"
    old = unpacked(rec)
    v3 = codec.decode(codec.encode(old, writer_schema=history_schema("ExperienceBatch", 3)))
    assert not v3["timestamps_ms_packed"] and v3["event_ids"] == ["e1", "e2", "e3", "e4"]
    for decoded in (v3, codec.decode(codec.encode(rec))):
        event_ids, task_ids, stamps = id_columns(decoded)
        assert (event_ids, task_ids, stamps.tolist()) == (["e1", "e2", "e3", "e4"], ["t"] * 4, [1, 2, 3, 2**40])


def test_an_id_with_a_newline_is_refused_where_the_batch_is_made():
    with pytest.raises(ValueError, match="newline"):
        _batch(event_ids=["a", "b\nc", "d", "e"])
    with pytest.raises(ValueError, match="newline"):
        make_batch_record("sine", np.zeros((1, 1)), np.ones((1, 1)), ["t\n"])


@pytest.mark.parametrize("mutate,error", [
    (lambda d: b"\x00\x01" + d[2:], BadMarker),
    (lambda d: b"", BadMarker),
    (lambda d: b"{\"json\": true}", BadMarker),
    (lambda d: d[:2] + b"\xff" * 8 + d[10:], UnknownFingerprint),
    (lambda d: d[:-7], TruncatedBody),
    (lambda d: d[:12], TruncatedBody),
    (lambda d: d + b"extra", TruncatedBody),
])
def test_bad_input_raises_typed_errors(mutate, error):
    codec = AvroCodec("ExperienceBatch")
    with pytest.raises(error):
        codec.decode(mutate(codec.encode(_batch())))


def test_a_record_of_another_type_is_refused():
    event = AvroCodec("DecisionEvent").encode({"event_type": "RolledBack", "model_id": "m", "version": 1,
                                               "timestamp_ms": 0, "reason": "r", "figures": {}})
    with pytest.raises(WrongRecordType):
        AvroCodec("ExperienceBatch").decode(event)


def test_any_record_is_decoded_by_the_type_its_fingerprint_names():
    from schemas import decode_any

    event = {"event_type": "RolledBack", "model_id": "m", "version": 1, "timestamp_ms": 0, "reason": "r", "figures": {},
             "cause": "other", "agent_id": None, "rollout": None, "ab_test": None, "drop_challenger": True, "signature": b"",
             "key_id": "", "label": None, "rule": ""}
    for name, rec in (("ExperienceBatch", _batch()), ("DecisionEvent", event)):
        assert decode_any(AvroCodec(name).encode(rec)) == (name, rec)
    with pytest.raises(UnknownFingerprint):
        decode_any(MARKER + b"\x13" * 8 + b"body")


def test_records_of_the_first_model_version_and_decision_schemas_still_read():
    old_event = {"event_type": "VersionRejected", "model_id": "m", "version": 3, "timestamp_ms": 5, "reason": "r",
                 "figures": {"x": 1.0}}
    codec = AvroCodec("DecisionEvent")
    untyped = {"rollout": None, "ab_test": None, "drop_challenger": False,  # the typed fields of v5, read as unset
               "signature": b"", "key_id": "", "label": None, "rule": ""}  # and v6's unsigned, unlabelled; v8's rule
    assert codec.decode(codec.encode(old_event, writer_schema=history_schema("DecisionEvent", 1))) == {**old_event, "cause": "other",
                                                                                                        "agent_id": None, **untyped}
    v2_event = {**old_event, "cause": "quarantine"}  # before agent_id (v3): read with none
    assert codec.decode(codec.encode(v2_event, writer_schema=history_schema("DecisionEvent", 2))) == {**v2_event, "agent_id": None,
                                                                                                       **untyped}
    v4_event = {**v2_event, "event_type": "RolloutAdvanced", "agent_id": None, "figures": {"share": 25.0, "stage": 1.0}}
    decoded = codec.decode(codec.encode(v4_event, writer_schema=history_schema("DecisionEvent", 4)))
    assert decoded == {**v4_event, **untyped}
    from streams.records.wire import RolloutPosition
    assert RolloutPosition.of(decoded) == RolloutPosition(1, 25.0)  # a position written as figures still reads
    old_version = {"model_id": "m", "version": 1, "parent_version": None, "algorithm": "fomaml", "created_at_ms": 1,
                   "weights": b"w", "sha256": "s", "config_json": "{}", "metrics": {"era_0_points": 90.0}, "lineage": [],
                   "rollout_stage": "PRODUCTION"}
    codec = AvroCodec("ModelVersion")
    decoded = codec.decode(codec.encode(old_version, writer_schema=history_schema("ModelVersion", 1)))
    assert decoded["era_points"] == [] and decoded["metrics"] == {"era_0_points": 90.0}
