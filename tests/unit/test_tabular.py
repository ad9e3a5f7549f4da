"""The tabular pieces one at a time: reading hostile tables, the pipeline's statistics and arrays,
the gate, the candidates, selection offline and online, and the model folder."""

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learners.errors import ConfigError
from learners.tabular.bandit import OnlineSelector
from learners.tabular.candidates import CandidateSpec, Family, default_candidates
from learners.tabular.data import from_records, read_csv, read_table
from learners.tabular.gate import choose_pipeline
from learners.tabular.model import TabularModel
from learners.tabular.pipeline import FeaturePipeline, Step
from learners.tabular.prequential import prequential_selector


@pytest.mark.parametrize("text,target,expect", [
    ("", "y", "no rows"),
    ("a,b\n1,2\n", "y", "no column 'y'"),
    ("a,y\n1,\n2,1\n", "y", "have no 'y'"),
])
def test_bad_tables_say_what_to_fix(text, target, expect):
    with pytest.raises(ConfigError, match=expect):
        read_csv(io.StringIO(text), target)


def test_missing_file_and_wide_categoricals(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        read_table(tmp_path / "nope.csv", "y")
    rows = [{"id": f"user{i}", "x": i, "y": i % 2} for i in range(30)]
    table = from_records(rows, "y")
    assert table.names == ("x",) and table.dropped == ("id",)


def test_parquet_reads_like_csv(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "c": ["u", "v", "u"], "y": ["no", "yes", "no"]}), tmp_path / "t.parquet")
    t = read_table(tmp_path / "t.parquet", "y")
    assert t.names == ("a", "c=u", "c=v") and t.classes == ("no", "yes") and math.isnan(t.X[1, 0])


def test_running_statistics_match_the_batch_ones():
    gen = np.random.default_rng(0)
    X = gen.normal(5, 3, size=(200, 3)).astype(np.float32)
    X[gen.random(X.shape) < 0.1] = np.nan
    streamed = FeaturePipeline.fit(X[:50])
    for i in range(50, 200, 7):
        streamed.update(X[i : i + 7])
    batch = FeaturePipeline.fit(X)
    np.testing.assert_allclose(streamed.mean, batch.mean, rtol=1e-9)
    np.testing.assert_allclose(streamed.m2, batch.m2, rtol=1e-9)
    np.testing.assert_allclose(streamed.mean, np.nanmean(X, 0), rtol=1e-5)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)  # the same examples every run
@given(st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.just(float("nan"))),
                         min_size=3, max_size=3), min_size=2, max_size=30))
def test_pipeline_output_is_always_finite(rows):
    X = np.asarray(rows, np.float32)
    p = FeaturePipeline.fit(X, (Step.LOG, Step.MISSING, Step.STANDARDISE))
    Z = p.transform(X)
    assert np.isfinite(Z).all()
    again = FeaturePipeline.from_arrays(p.spec(), p.arrays())
    np.testing.assert_array_equal(again.transform(X), Z)


def test_one_hostile_row_does_not_poison_the_statistics():
    X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    clean, hit = FeaturePipeline.fit(X), FeaturePipeline.fit(X)
    hit.update(np.array([[np.inf, -np.inf]], np.float32))  # counts as missing: nothing learned from it
    np.testing.assert_array_equal(hit.transform(X), clean.transform(X))
    hit.update(np.array([[3e38, 0.0]], np.float32))  # capped, so the variance stays finite
    assert np.isfinite(hit.m2).all() and np.isfinite(hit.transform(X)).all()


def test_pipeline_rejects_rows_of_the_wrong_width():
    p = FeaturePipeline.fit(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="3 features"):
        p.transform(np.zeros((2, 5), np.float32))


def test_gate_drops_distractors_and_keeps_standardisation():
    gen = np.random.default_rng(1)
    signal = gen.normal(size=(1500, 2))
    X = np.c_[signal * [1000.0, 0.01], gen.normal(size=(1500, 6)) * 50].astype(np.float32)
    y = (signal[:, 0] + signal[:, 1] > 0).astype(int)
    report = choose_pipeline(X, y, classes=2, seed=0)
    assert Step.STANDARDISE in report.pipeline.steps
    kept = report.pipeline.keep
    if Step.SELECT in report.pipeline.steps:  # selection, when kept, must keep both signal columns
        assert kept[0] and kept[1] and kept.sum() < len(kept)
    assert all(t.kept == (t.score_with > t.score_without) for t in report.trials if t.kept)


def test_candidates_are_deterministic_and_round_trip():
    gen = np.random.default_rng(0)
    X = gen.normal(size=(100, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    for spec in default_candidates():
        a, b = spec.build(4, 2, seed=3), spec.build(4, 2, seed=3)
        a.learn_many(X, y), b.learn_many(X, y)
        for key, value in a.arrays().items():
            np.testing.assert_array_equal(value, b.arrays()[key])
        c = spec.build(4, 2, seed=9)
        c.load_arrays(a.arrays())
        np.testing.assert_array_equal(c.predict_many(X), a.predict_many(X))
    with pytest.raises(ValueError, match="cannot regress"):
        CandidateSpec(Family.NAIVE_BAYES).build(4, 0)


def test_selector_stops_training_a_hopeless_candidate_and_switches_to_the_better_one():
    gen = np.random.default_rng(0)
    X = gen.normal(size=(3000, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # xor: linear models cannot, an MLP can
    models = [CandidateSpec(Family.LINEAR, lr=0.01).build(2, 2, 0), CandidateSpec(Family.MLP, lr=0.05, hidden=32, layers=1).build(2, 2, 0)]
    sel = OnlineSelector(models, window=300)
    switches = []
    prequential_selector(sel, X, y, 0, switches.append)
    assert sel.champion_name.startswith("mlp")
    assert switches and switches[0].after.startswith("mlp") and switches[0].score_after > switches[0].score_before
    assert sel.learning == [False, True] and sel.updates < 2 * len(X)


def test_model_folder_round_trip_and_wrong_folder(tmp_path):
    rows = [{"size": i * 10.0, "colour": "red" if i % 3 else "blue", "y": "big" if i > 20 else "small"} for i in range(40)]
    table = from_records(rows, "y")
    p = FeaturePipeline.fit(table.X)
    learner = CandidateSpec(Family.NAIVE_BAYES).build(p.width, 2)
    learner.learn_many(p.transform(table.X), table.y)
    model = TabularModel(p, learner, table.names, "y", table.classes)
    loaded = TabularModel.load(model.save(tmp_path / "m"))
    assert loaded.predict_records(rows) == model.predict_records(rows)
    assert loaded.predict_records([{"size": "", "colour": None}])[0] in ("big", "small")  # gaps are imputed
    with pytest.raises(ConfigError, match="automl"):
        TabularModel.load(tmp_path / "empty")
