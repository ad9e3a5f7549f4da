"""The ingest path on its own (no broker): every kind of bad input becomes a dead letter with its
reason, good input is buffered once per event id."""

import hashlib
import math

import numpy as np
import pytest

from schemas import codec_for
from schemas.experiences import make_batch_record
from streams.worker.ingest import Ingestor
from streams.worker.metrics import WorkerMetrics
from streams.settings import Settings
from streams.worker.state import WorkerState

CODEC = codec_for("ExperienceBatch")
DEAD_LETTERS = codec_for("DeadLetter")


def make_ingestor(settings: Settings) -> Ingestor:
    return Ingestor(WorkerState.from_settings(settings), settings, WorkerMetrics())


def good(n=8, task="t1", ids=None, model="sine"):
    x = np.linspace(-1, 1, n, dtype="f4")[:, None]
    return CODEC.encode(make_batch_record(model, x, np.sin(x), [task] * n, event_ids=ids))


def hostile_messages():
    rec = make_batch_record("sine", np.zeros((4, 1)), np.zeros((4, 1)), ["t"] * 4)
    nan = dict(rec, features=np.array([[math.nan]] * 4, "f4").tobytes())
    shape = dict(rec, features=np.zeros((3, 1), "f4").tobytes())
    width = dict(rec, feature_dim=2, features=np.zeros((4, 2), "f4").tobytes())
    unknown = dict(rec, model_id="nope")
    big = make_batch_record("sine", np.zeros((5000, 1)), np.zeros((5000, 1)), ["t"] * 5000)
    data = CODEC.encode(rec)
    return {
        "bad_marker": b"\x00\x01" + data[2:],
        "unknown_fingerprint": data[:2] + b"\x13" * 8 + data[10:],
        "truncated": data[: len(data) // 2],
        "non_finite": CODEC.encode(nan),
        "bad_shape": CODEC.encode(shape),
        "oversize": CODEC.encode(big),
        "unknown_model": CODEC.encode(unknown),
        "bad_shape ": CODEC.encode(width),  # trailing spaces: more bad_shape cases
        "bad_shape  ": CODEC.encode(dict(rec, event_ids_joined="a\nb\nc")),  # 3 joined ids for 4 rows
        "bad_shape   ": CODEC.encode(dict(rec, task_ids_joined="t\nt\nt\nt\nt")),  # 5 for 4
        "bad_shape    ": CODEC.encode(dict(rec, timestamps_ms_packed=rec["timestamps_ms_packed"][:-3])),  # 29 bytes
        "bad_shape     ": CODEC.encode(dict(rec, timestamps_ms_packed=rec["timestamps_ms_packed"] + b"\0" * 8)),
    }


@pytest.fixture
def ingestor():
    s = Settings.of(metrics_port=0, max_batch_rows=4096)
    return make_ingestor(s)


def test_every_hostile_input_is_a_dead_letter_with_its_reason(ingestor):
    for offset, (kind, data) in enumerate(hostile_messages().items()):
        result = ingestor.ingest(data, b"k", "experiences", 0, offset)
        assert result.dead_letter is not None, kind
        letter = DEAD_LETTERS.decode(result.dead_letter)
        assert letter["error_kind"] == kind.strip()
        assert letter["original"] == data and letter["source_offset"] == offset
        assert letter["message"]


def test_a_record_of_another_type_is_dead_lettered_with_that_reason(ingestor):
    event = codec_for("DecisionEvent").encode({"event_type": "RolledBack", "model_id": "sine", "version": 1,
                                                "timestamp_ms": 0, "reason": "r", "figures": {}})
    letter = DEAD_LETTERS.decode(ingestor.ingest(event, b"sine", "experiences", 0, 0).dead_letter)
    assert letter["error_kind"] == "wrong_record_type" and "DecisionEvent" in letter["message"]


def test_non_bytes_and_garbage_never_raise(ingestor):
    for value in [None, "text", 12, b"", bytes(range(256)) * 10]:
        assert ingestor.ingest(value, None, "experiences", 0, 0).dead_letter is not None


def test_good_input_is_buffered_once_per_event_id(ingestor):
    ids = [f"e{i}" for i in range(8)]
    first = ingestor.ingest(good(ids=ids), b"sine", "experiences", 0, 0)
    again = ingestor.ingest(good(ids=ids), b"sine", "experiences", 0, 1)
    assert (first.accepted, first.duplicates) == (8, 0)
    assert (again.accepted, again.duplicates) == (0, 8)
    state = ingestor.state.models["sine"]
    assert state.dedup.counted == 8 and state.buffer.num_points == 8
    assert state.lineage.ranges() == [{"topic": "experiences", "partition": 0, "start_offset": 0, "end_offset": 1}]


def test_ids_repeated_inside_one_batch_count_once(ingestor):
    result = ingestor.ingest(good(ids=["a", "b", "a", "c", "b", "d", "e", "f"]), b"sine", "experiences", 0, 0)
    assert (result.accepted, result.duplicates) == (6, 2)


def test_a_classifier_takes_whole_number_labels_and_dead_letters_the_rest():
    from streams.simulation.fleet import DigitFleet
    from streams.catalog.presets import digits_model

    s = Settings.of(metrics_port=0, models={"digits": digits_model()})
    ingestor = make_ingestor(s)
    _, x, y = DigitFleet(seed=0).sample_task()
    ok = ingestor.ingest(CODEC.encode(make_batch_record("digits", x, y, ["t"] * len(x))), b"k", "experiences", 0, 0)
    assert ok.dead_letter is None and ok.accepted == len(x)
    for offset, labels in enumerate(([[0.5]] * len(x), [[2.0**30]] * len(x)), start=1):
        bad = ingestor.ingest(CODEC.encode(make_batch_record("digits", x, np.array(labels, "f4"), ["u"] * len(x))), b"k",
                              "experiences", 0, offset)
        assert DEAD_LETTERS.decode(bad.dead_letter)["error_kind"] == "bad_label"


def test_models_setting_takes_configs_or_preset_names_and_says_what_is_wrong():
    from streams.catalog.model_configs import parse_models

    models = parse_models('{"a": "digits", "b": "sine"}')
    assert models["a"]["algo"] == "protonet" and models["b"]["task"]["name"] == "sine"
    assert Settings.of(models=models).classifiers() == {"a"}
    for bad, says in (("nope", "not JSON"), ("[]", "non-empty JSON object"), ('{"a": "x"}', "neither a preset"),
                      ('{"a": {"algo": "maml"}}', "needs algo, task and backbone")):
        with pytest.raises(ValueError, match=says):
            parse_models(bad)


def test_a_worker_serves_a_model_folder_from_its_weights(tmp_path):
    import torch

    from learners import build_learner, default_config, save_checkpoint
    from streams.catalog.model_configs import parse_models

    config = default_config("sine", "maml")
    torch.manual_seed(3)
    learner = build_learner(config)
    save_checkpoint(tmp_path, learner, config)
    s = Settings.of(metrics_port=0, models=parse_models(f'{{"tuned": "{tmp_path}"}}'))
    state = make_ingestor(s).state.models["tuned"]
    assert state.learner.config["learner"] == config["learner"]
    for a, b in zip(learner.model.state_dict().values(), state.learner.champion.model.state_dict().values()):
        assert torch.equal(a, b)


def test_an_oversized_message_gets_a_dead_letter_that_fits(ingestor):
    from streams.records.wire import MAX_DEAD_LETTER_ORIGINAL

    huge = b"\xc3\x01" + bytes(5_000_000)
    result = ingestor.ingest(huge, b"k" * 100_000, "experiences", 3, 42)
    assert len(result.dead_letter) < MAX_DEAD_LETTER_ORIGINAL + 10_000  # far under a 1 MiB producer request
    letter = DEAD_LETTERS.decode(result.dead_letter)
    assert letter["error_kind"] == "oversize" and letter["truncated"] and letter["original_length"] == len(huge)
    assert letter["original"] == huge[:MAX_DEAD_LETTER_ORIGINAL] and letter["source_offset"] == 42
    assert letter["original_sha256"] == hashlib.sha256(huge).hexdigest() and len(letter["original_key"]) == 1024


def test_a_dead_letter_written_before_v2_still_reads():
    from schemas import history_schema

    record = {"original": b"abc", "original_key": None, "source_topic": "experiences", "source_partition": 0,
              "source_offset": 1, "error_kind": "bad_marker", "message": "m", "timestamp_ms": 0}
    letter = DEAD_LETTERS.decode(DEAD_LETTERS.encode(record, writer_schema=history_schema("DeadLetter", 1)))
    assert letter["original"] == b"abc" and letter["original_length"] == -1 and not letter["truncated"]


def test_an_agent_over_its_quota_is_dead_lettered_on_the_log_s_clock_and_the_others_are_not():
    s = Settings.of(metrics_port=0, agent_rows_per_s=16)
    ingestor = make_ingestor(s)

    def send(agent, n, t_ms, offset):
        x = np.linspace(-1, 1, n, dtype="f4")[:, None]
        value = CODEC.encode(make_batch_record("sine", x, np.sin(x), [f"{agent}-{offset}"] * n, agent_id=agent))
        return ingestor.ingest(value, b"sine", "experiences", 0, offset, timestamp_ms=t_ms)

    flood = [send("flood", 8, 100 * i, i) for i in range(20)]  # 80 rows/s for 2 s against a quota of 16 (bursts of 32)
    polite = [send(f"polite-{i}", 8, 100 * i, 100 + i) for i in range(20)]  # each its own agent: all within quota
    over = [r for r in flood if r.reason == "over_quota"]
    assert sum(r.accepted for r in flood) == 8 * (20 - len(over)) and 8 * (20 - len(over)) <= 32 + 16 * 2
    assert "over its quota of 16 rows/s" in DEAD_LETTERS.decode(over[0].dead_letter)["message"]
    assert all(r.dead_letter is None for r in polite)


def test_completed_tasks_are_scored_in_batches_and_a_timer_scores_what_waits():
    """Tasks that complete are scored together: a full group at once, fewer once the oldest has
    waited the window; a timer's score names the last message ingested for the model, and its
    losses are what a replay feeds after that message."""
    from streams.simulation.fleet import SineFleet
    from streams.worker.recovery.log_replay import ScoreLog

    s = Settings.of(metrics_port=0, drift_group=3, drift_window_s=60.0, guard=False)  # no task held out as a probe
    ingestor = make_ingestor(s)
    ingestor.state.models["sine"].drift.tokens = 100.0
    fleet = SineFleet(seed=0, points_per_task=20)
    results = []
    for offset in range(4):  # one complete task a message
        tid, x, y = fleet.sample_task()
        results.append(ingestor.ingest(CODEC.encode(make_batch_record("sine", x, y, [tid] * len(x))), b"sine", "experiences", 0, offset))
    drift = ingestor.state.models["sine"].drift
    assert [r.scored is not None for r in results] == [False, False, True, False]  # the third completes a group of 3
    assert len(results[2].scored[0]) == 3 and drift.monitor.observations == 3 and len(drift.pending) == 1
    assert ingestor.score_due() == []  # the fourth waits for its window
    [(due, partition, offset)] = ingestor.score_due(now=drift.pending_since + 60.0)
    assert (due.model_id, partition, offset) == ("sine", 0, 3) and len(due.scored[0]) == 1
    assert drift.monitor.observations == 4 and not drift.pending

    log = ScoreLog([{"model_id": "sine", "source_partition": 0, "source_offset": 3, "task_ids": due.scored[0],
                     "losses": due.scored[1].tolist(), "timestamp_ms": 1},
                    {"model_id": "other", "source_partition": 0, "source_offset": 3, "task_ids": ["x"], "losses": [0.5],
                     "timestamp_ms": 1}])
    assert set(log.at(0, 3)) == {"sine", "other"} and log.at(0, 2) == {}  # one word per model at a message
    replayed = make_ingestor(s)
    replayed.feed_replayed("sine", log.at(0, 3)["sine"][1])
    replayed.feed_replayed("other", log.at(0, 3)["other"][1])  # a model this worker does not hold: ignored
    assert replayed.state.models["sine"].drift.monitor.observations == 1
