"""Every worker setting comes from its METASTREAM_ variable, typed, with errors that say which."""

import dataclasses

import pytest

from learners.errors import ConfigError
from streams.settings import Settings

SAMPLES = {bool: ("0", False), int: ("7", 7), float: ("0.25", 0.25), str: ("x", "x")}


def test_every_setting_is_read_from_its_variable():
    env, expected = {}, {}
    for f in dataclasses.fields(Settings):
        var = f"METASTREAM_{f.name.upper()}"
        if f.name == "models":
            env[var], expected[f.name] = '{"d": "digits"}', "protonet"
        elif f.name == "kafka":
            env[var], expected[f.name] = "host:9092", "host:9092"
        elif f.name == "new_models":  # a policy is JSON
            policy = '[{"pattern": "d-*", "model": "digits"}]'
            env[var], expected[f.name] = policy, policy
        elif f.name == "max_points_per_task":  # the digits model's tasks need 10 points
            env[var], expected[f.name] = "41", 41
        else:
            kind = type(getattr(Settings(), f.name))
            env[var], expected[f.name] = SAMPLES[kind]
    s = Settings.from_env(env)
    for name, value in expected.items():
        got = getattr(s, name)
        assert (got["d"]["algo"] if name == "models" else got) == value, name
    assert s.new_model_config("d-7")["algo"] == "protonet" and s.new_model_config("e-7") is None
    assert Settings.from_env({}) == Settings()  # no variables: the defaults, one per setting


def test_a_model_whose_tasks_cannot_fit_the_buffer_is_refused_at_start():
    with pytest.raises(ConfigError, match="METASTREAM_MAX_POINTS_PER_TASK=50"):
        Settings.from_env({"METASTREAM_MODELS": '{"t": {"preset": "tabular", "features": 4, "ways": 5, "shots": 5}}'})
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        Settings.from_env({"METASTREAM_MODELS": '{"t": {"preset": "nope"}}'})
    with pytest.raises(ConfigError, match="features"):
        Settings.from_env({"METASTREAM_MODELS": '{"t": {"preset": "tabular", "features": "many"}}'})


def test_a_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="METASTREAM_PARTITIONS='four' is not a valid int"):
        Settings.from_env({"METASTREAM_PARTITIONS": "four"})
    assert Settings.from_env({"METASTREAM_GUARD": "off"}).guard is False
    assert Settings.from_env({"METASTREAM_KAFKA": ""}).kafka is None


def test_overrides_win_over_variables_and_none_keeps_them():
    s = Settings.from_env({"METASTREAM_METRICS_PORT": "1234"}, metrics_port=None, margin=0.1)
    assert s.metrics_port == 1234 and s.margin == 0.1


def test_a_new_models_policy_that_is_not_a_list_of_rules_is_refused_at_start():
    with pytest.raises(ConfigError, match="not JSON"):
        Settings.from_env({"METASTREAM_NEW_MODELS": "reviewer-*"})
    with pytest.raises(ConfigError, match="pattern"):
        Settings.from_env({"METASTREAM_NEW_MODELS": '{"pattern": "r-*"}'})
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        Settings.from_env({"METASTREAM_NEW_MODELS": '[{"pattern": "r-*", "model": {"preset": "nope"}}]'})
    s = Settings.from_env({"METASTREAM_NEW_MODELS": '[{"pattern": "r-*", "model": "sine"}]'})
    assert s.new_model_config("r-" + "x" * 200) is None and s.new_model_config("r-\x00") is None
