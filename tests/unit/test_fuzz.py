"""Property-based fuzzing (hypothesis) of what reads outside input: the codec, the ingest path and
the subscriber's version check. Arbitrary bytes, and valid records with bytes flipped, cut or
inserted, never crash anything: each ends decoded or refused (CodecError), accepted or
dead-lettered with a reason, loaded or rejected with a reason. A fixed, derandomized budget
(``FUZZ_EXAMPLES`` per property) keeps the run reproducible."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import CodecError, codec_for
from schemas.experiences import make_batch_record
from streams.records.wire import model_version
from streams.settings import Settings
from streams.client.subscriber import ModelSubscriber

from .test_ingest import make_ingestor

FUZZ_EXAMPLES = int(os.environ.get("METASTREAM_FUZZ_EXAMPLES", "1000"))
BUDGET = settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
RECORD_TYPES = ("ExperienceBatch", "ModelVersion", "DecisionEvent", "DeadLetter", "ScoreRecord")


def _valid_batch() -> bytes:
    x = np.linspace(-5, 5, 12, dtype="f4")[:, None]
    return codec_for("ExperienceBatch").encode(make_batch_record("sine", x, np.sin(x), ["t1"] * 6 + ["t2"] * 6, agent_id="a"))


def _valid_version() -> bytes:
    from learners.online import OnlineMetaLearner

    learner = OnlineMetaLearner(Settings.of(metrics_port=0).catalog.models["sine"], seed=0)
    return model_version("sine", 1, None, learner.config["algo"], learner.weights_bytes(), learner.config, {}, [])


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` with a few bytes flipped, a cut, or bytes inserted (same-length flips mostly)."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("flip", "flip", "cut", "insert")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@BUDGET
@given(st.binary(max_size=2048), st.sampled_from(RECORD_TYPES))
def test_arbitrary_bytes_decode_or_raise_a_codec_error(data, record_type):
    try:
        codec_for(record_type).decode(data)
    except CodecError as exc:
        assert exc.kind


@BUDGET
@given(st.data())
def test_a_mutated_record_decodes_or_raises_a_codec_error(data):
    value = data.draw(mutated(_valid_batch()))
    try:
        record = codec_for("ExperienceBatch").decode(value)
    except CodecError:
        return
    assert isinstance(record, dict)


@pytest.fixture(scope="module")
def ingestor():
    return make_ingestor(Settings.of(metrics_port=0))


@BUDGET
@given(value=st.one_of(st.binary(max_size=4096), mutated(_valid_batch())))
def test_ingest_accepts_or_dead_letters_with_a_reason(ingestor, value):
    result = ingestor.ingest(value, b"sine", "experiences", 0, 0)
    if result.dead_letter is not None:
        letter = codec_for("DeadLetter").decode(result.dead_letter)
        assert letter["error_kind"] and letter["message"] and result.reason == letter["error_kind"]
        assert letter["original_length"] == len(value)
    else:
        assert result.model_id == "sine" and result.accepted + result.duplicates > 0


@pytest.fixture(scope="module")
def version_bytes():
    return _valid_version()


@BUDGET
@given(data=st.data())
def test_the_subscriber_loads_or_rejects_a_mutated_version_with_a_reason(version_bytes, data):
    value = data.draw(st.one_of(st.binary(max_size=2048), mutated(version_bytes)))
    sub = ModelSubscriber("127.0.0.1:1")  # never started: only its version check runs
    sub._take_version(SimpleNamespace(value=value, offset=0))
    loaded = sub.take_arrivals()
    if value == version_bytes:
        assert len(loaded) == 1
    assert len(loaded) + len(sub.rejected) <= 1
    assert all(reason for reason in sub.rejected)
    if loaded:  # what was loaded matches its hash: a mutation that left the weights intact
        import hashlib
        assert hashlib.sha256(loaded[0].record["weights"]).hexdigest() == loaded[0].record["sha256"]
