"""Every worker setting comes from its METASTREAM_ variable, typed, with errors that say which."""

import dataclasses
import json

import pytest

from learners.errors import ConfigError
from streams.catalog.presets import sine_model
from streams.settings import Settings
from streams.settings.worker import SETTINGS

SAMPLES = {bool: ("0", False), int: ("7", 7), float: ("0.25", 0.25), str: ("x", "x")}


def test_every_setting_is_read_from_its_variable():
    env, expected = {}, {}
    for name in SETTINGS:
        var = f"METASTREAM_{name.upper()}"
        if name == "models":
            env[var], expected[name] = '{"d": "digits"}', "protonet"
        elif name == "kafka":
            env[var], expected[name] = "host:9092", "host:9092"
        elif name == "new_models":  # a policy is JSON
            policy = '[{"pattern": "d-*", "model": "digits"}]'
            env[var], expected[name] = policy, policy
        elif name == "max_points_per_task":  # the digits model's tasks need 10 points
            env[var], expected[name] = "41", 41
        elif name == "rollout_stages":
            env[var], expected[name] = "10,100", (10.0, 100.0)
        elif name == "drift_detector":
            env[var], expected[name] = "pagehinkley", "pagehinkley"
        else:
            kind = type(Settings().value(name))
            env[var], expected[name] = SAMPLES[kind]
    s = Settings.from_env(env)
    for name, value in expected.items():
        got = s.value(name)
        assert (got["d"]["algo"] if name == "models" else got) == value, name
    assert s.new_model_config("d-7")["algo"] == "protonet" and s.new_model_config("e-7") is None
    assert Settings.from_env({}) == Settings()  # no variables: the defaults, one per setting


def test_settings_are_frozen_components_read_by_name():
    s = Settings.of(guard_max_drop=3.0, experiences_topic="x")
    assert s.guard.max_drop == 3.0 and s.topics.experiences == "x" and s.topics.all[0] == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.guard.max_drop = 4.0  # type: ignore[misc]
    assert s.replaced(kafka=None, guard=False).guard == dataclasses.replace(s.guard, enabled=False)
    with pytest.raises(TypeError, match="no setting named guard_max"):
        Settings.of(guard_max=1.0)
    with pytest.raises(ConfigError, match="METASTREAM_ROLLOUT_ALPHA=5"):
        Settings.of(rollout_alpha=5)


def test_a_model_config_sets_its_own_update_and_guard_settings():
    s = Settings()
    own = {"update": {"iterations": 300, "meta_batch": 8}, "continual": {"ewc": 0.0, "recent_share": 0.3}}
    assert (s.update_for(own).iterations, s.update_for(own).meta_batch, s.update_for(own).recent) == (300, 8, 64)
    assert (s.guard_for(own).ewc, s.guard_for(own).distill) == (0.0, 1.0)
    assert s.update_for({}) is s.update
    with pytest.raises(ConfigError, match="'update' section has no setting 'iters'"):
        Settings.from_env({"METASTREAM_MODELS": json.dumps({"m": {**sine_model(), "update": {"iters": 3}}})})
    with pytest.raises(ConfigError, match="update.share=2: give a number strictly between 0 and 1"):
        Settings.from_env({"METASTREAM_MODELS": json.dumps({"m": {**sine_model(), "update": {"share": 2}}})})


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
    assert Settings.from_env({"METASTREAM_GUARD": "off"}).guard.enabled is False
    assert Settings.from_env({"METASTREAM_KAFKA": ""}).broker.bootstrap is None


def test_overrides_win_over_variables_and_none_keeps_them():
    s = Settings.from_env({"METASTREAM_METRICS_PORT": "1234"}, metrics_port=None, margin=0.1)
    assert s.process.metrics_port == 1234 and s.update.margin == 0.1


def test_a_new_models_policy_that_is_not_a_list_of_rules_is_refused_at_start():
    with pytest.raises(ConfigError, match="not JSON"):
        Settings.from_env({"METASTREAM_NEW_MODELS": "reviewer-*"})
    with pytest.raises(ConfigError, match="pattern"):
        Settings.from_env({"METASTREAM_NEW_MODELS": '{"pattern": "r-*"}'})
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        Settings.from_env({"METASTREAM_NEW_MODELS": '[{"pattern": "r-*", "model": {"preset": "nope"}}]'})
    s = Settings.from_env({"METASTREAM_NEW_MODELS": '[{"pattern": "r-*", "model": "sine"}]'})
    assert s.new_model_config("r-" + "x" * 200) is None and s.new_model_config("r-\x00") is None


@pytest.mark.parametrize("variable, value, says", [
    ("METASTREAM_GUARD", "ture", "METASTREAM_GUARD='ture': give 1, true, yes or on, or 0, false, no or off"),
    ("METASTREAM_DRIFT_DETECTOR", "adwn", "METASTREAM_DRIFT_DETECTOR='adwn': choose one of adwin, pagehinkley"),
    ("METASTREAM_ROLLOUT_ALPHA", "5", "METASTREAM_ROLLOUT_ALPHA=5.0: give a number strictly between 0 and 1"),
    ("METASTREAM_PARTITIONS", "0", "METASTREAM_PARTITIONS=0: give a whole number of at least 1"),
    ("METASTREAM_METRICS_PORT", "70000", "METASTREAM_METRICS_PORT=70000: give a port"),
    ("METASTREAM_SCHEDULE_S", "-1", "METASTREAM_SCHEDULE_S=-1.0: give a number of at least 0"),
    ("METASTREAM_MARGIN", "nan", "METASTREAM_MARGIN=nan: give a finite number"),
    ("METASTREAM_ROLLOUT_STAGES", "50,25", "METASTREAM_ROLLOUT_STAGES='50,25': increasing percentages ending at 100"),
    ("METASTREAM_KAFKA_SECURITY_PROTOCOL", "TLS", "METASTREAM_KAFKA_SECURITY_PROTOCOL='TLS': choose one of"),
])
def test_a_bad_value_is_refused_at_start_in_one_line(variable, value, says):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({variable: value})
    assert str(err.value).startswith(says) and "\n" not in str(err.value)


def test_a_misspelt_variable_is_named_with_the_nearest_real_one(caplog):
    with caplog.at_level("WARNING", logger="metastream.settings"):
        s = Settings.from_env({"METASTREAM_GAURD": "0", "METASTREAM_DATA": "/data", "METASTREAM_ZZZZZZZZZZZ": "1"})
    assert s.guard.enabled is True  # ignored, but said
    said = [r.getMessage() for r in caplog.records]
    assert said == ["METASTREAM_GAURD is not a metastream setting: did you mean METASTREAM_GUARD?",
                    "METASTREAM_ZZZZZZZZZZZ is not a metastream setting (metastream settings lists them all)"]


def test_the_sasl_password_is_read_from_a_file(tmp_path):
    from streams.kafka.connection import client_options

    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    env = {"METASTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "METASTREAM_KAFKA_SASL_USERNAME": "worker",
           "METASTREAM_KAFKA_SASL_PASSWORD_FILE": str(secret)}
    assert client_options(env)["sasl_plain_password"] == "s3cret"
    with pytest.raises(ConfigError, match="METASTREAM_KAFKA_SASL_PASSWORD_FILE=.*cannot read it"):
        client_options({**env, "METASTREAM_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing")})
