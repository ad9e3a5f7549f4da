"""The offline CLI end to end, as a user runs it (subprocesses, real data, tiny budgets)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COMMANDS = ["meta-train", "evaluate", "eval-oneshot", "make-dev-runs", "plot", "quickstart", "broker", "worker", "up", "settings",
            "models", "replay", "demo", "continual-bench", "tune", "automl", "transfer", "similar"]


def test_every_command_has_help(cli):
    from typer.testing import CliRunner

    from streams.cli import app

    out = cli("--help").stdout  # the real entry point once; each command's help in this process (a subprocess each took 80 s)
    runner = CliRunner()
    for name in COMMANDS:
        assert name in out
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0 and "Usage" in result.output, (name, result.output)


def test_sine_train_evaluate_plot(cli, tmp_path):
    out = tmp_path / "sine"
    cli("meta-train", "sine", "--algo", "maml", "--iterations", "40", "--validate-every", "20", "--val-episodes", "20", "--out", out)
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    result = json.loads(cli("evaluate", out, "--episodes", "20", "--json").stdout)
    assert result["metric"] == "mse" and {"before", "after", "ci95"} <= set(result)
    cli("plot", out)
    png = (out / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_protonet_oneshot_runs(cli, tmp_path):
    runs, model = tmp_path / "runs", tmp_path / "proto"
    cli("make-dev-runs", "--out", runs, "--runs", "3")
    assert len(list(runs.glob("run*/class_labels.txt"))) == 3
    cli("meta-train", "omniglot", "--algo", "protonet", "--iterations", "15", "--validate-every", "1000", "--val-episodes", "0",
        "--val-alphabets", "Balinese,Early_Aramaic", "--out", model)
    result = json.loads(cli("eval-oneshot", "--runs", runs, "--model", model, "--json").stdout)
    # 20-way: chance is 0.95 error; after these 15 iterations, over seeds 0-9: 0.70-0.80 (this one, seed 0: 0.77)
    assert 0.0 <= result["error_rate"] < 0.88
    assert set(result["runs"]) == {"run01", "run02", "run03"}
    plain = json.loads(cli("eval-oneshot", "--runs", runs, "--model", model, "--tta", "0", "--json").stdout)
    assert plain["items"] == result["items"]  # augmentation on by default, off with --tta 0: same runs scored
    shown = cli("eval-oneshot", "--runs", runs, "--model", model)
    assert "run01" in shown.stdout and "all" in shown.stdout and "warning" not in shown.stdout + shown.stderr  # tables on stdout


def test_omniglot_final_model_learns_all_alphabets_and_dev_runs_warn(cli, tmp_path):
    runs, model = tmp_path / "runs", tmp_path / "final"
    cli("make-dev-runs", "--out", runs, "--runs", "1")
    trained = cli("meta-train", "omniglot", "--algo", "protonet", "--iterations", "3", "--out", model).stderr
    assert "all 8 background alphabets" in trained
    assert json.loads((model / "config.json").read_text())["config"]["task"]["val_alphabets"] == []
    assert "not a held-out figure" in cli("eval-oneshot", "--runs", runs, "--model", model).stderr
    proc = cli("evaluate", model, check=False)
    assert proc.returncode == 2 and "--val-alphabets Balinese,Early_Aramaic" in proc.stderr


@pytest.mark.parametrize("args,expect", [
    (["evaluate", "/nonexistent/model"], "meta-train --out"),
    (["meta-train", "sine", "--algo", "protonet", "--iterations", "1"], "classifier"),
    (["eval-oneshot", "--runs", "/nonexistent", "--model", "/nonexistent"], "meta-train --out"),
])
def test_errors_say_what_to_do(cli, args, expect):
    proc = cli(*args, check=False)
    assert proc.returncode == 2
    assert expect in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gradient_model_on_wrong_way_count_is_explained(cli, tmp_path):
    runs, model = tmp_path / "runs", tmp_path / "maml"
    cli("make-dev-runs", "--out", runs, "--runs", "1")
    cli("meta-train", "omniglot", "--algo", "fomaml", "--iterations", "2", "--meta-batch", "2", "--validate-every", "1000", "--val-episodes", "0", "--out", model)
    proc = cli("eval-oneshot", "--runs", runs, "--model", model, check=False)
    assert proc.returncode == 2 and "--ways 20" in proc.stderr


def test_ctrl_c_saves_a_checkpoint(cli_env, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "meta-train", "sine", "--budget-minutes", "5",
                             "--out", str(out)], env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            # a background job inherits SIGINT ignored; a user's terminal does not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (out / "history.jsonl").is_file() or not (out / "history.jsonl").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, "training did not start"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert (out / "model.safetensors").is_file()
    saved = json.loads((out / "config.json").read_text())
    assert saved["metrics"]["interrupted"] is True and saved["metrics"]["iterations"] > 0


def test_continual_bench_prints_json_and_writes_plots(cli, tmp_path):
    import json

    result = cli("continual-bench", "split", "--methods", "der++", "--epochs", "1", "--out", str(tmp_path), "--json")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["benchmark"] == "split" and summary["scenario"] == "class-il" and summary["buffer"] == 200
    assert set(summary["methods"]) == {"finetune", "der++", "joint"}
    assert set(summary["methods"]["der++"]) >= {"acc", "bwt", "forgetting"}
    assert (tmp_path / "split-class-il-buffer200-average-accuracy.png").stat().st_size > 0
    bad = cli("continual-bench", "split", "--scenario", "class-il", "--methods", "progressive", check=False)
    assert bad.returncode == 2 and "task" in bad.stderr


def test_broker_and_worker_write_plain_lines_off_a_terminal(cli_env):
    """Scripts and logs read what the streaming commands print: no wrapped lines, no control codes."""
    import subprocess
    import sys
    import time

    from streams.kafka.broker import free_port
    from streams.worker.metrics import scrape
    from tests.conftest import ROOT

    broker = subprocess.Popen([sys.executable, "-m", "streams.cli", "broker"], env=cli_env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        bootstrap = broker.stdout.readline().strip()
        assert bootstrap.startswith("127.0.0.1:")
        lines = [broker.stderr.readline().rstrip("\n") for _ in range(2)]
        assert f"export METASTREAM_KAFKA={bootstrap}" in lines, lines
        port = free_port()
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--kafka", bootstrap, "--metrics-port", str(port)],
                                  env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while scrape(port).get("metastream_worker_ready") != 1.0:
            assert time.monotonic() < deadline and worker.poll() is None, "the worker did not get ready"
            time.sleep(0.5)
        worker.terminate()
        out = worker.communicate(timeout=30)[0]
        assert b"\x1b" not in out and b"\x08" not in out, out[:500]
        assert f"consuming experiences on {bootstrap}".encode() in out
    finally:
        for proc in (worker, broker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_settings_command_lists_every_setting(cli):
    from streams.settings import Settings

    rows = [line.split("\t") for line in cli("settings").stdout.splitlines()]
    assert rows[0] == ["component", "variable", "default", "meaning"]
    assert [r[1] for r in rows[1:]] == [v for v, _, _ in Settings.describe()]
    assert ["broker", "METASTREAM_KAFKA"] == rows[1][:2] and ["guard", "METASTREAM_GUARD_MAX_DROP"] in [r[:2] for r in rows]


def test_tune_saves_a_model_folder_that_evaluate_accepts_and_plots_the_study(cli, tmp_path):
    out = tmp_path / "tuned"
    result = cli("tune", "sine", "--algo", "maml", "--trials", "3", "--iterations", "20", "--rungs", "2", "--val-episodes", "10",
                 "--final-iterations", "10", "--out", out, "--json")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["trials"] == 3 and summary["finished"] + summary["pruned"] <= 3 and summary["best_params"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["learner"]["inner_lr"] == summary["best_params"]["inner_lr"]
    assert json.loads(cli("evaluate", out, "--episodes", "10", "--json").stdout)["metric"] == "mse"
    assert (out / "optimization-history.png").read_bytes()[:4] == b"\x89PNG"
    assert "trial" in result.stderr and "best of 3 trials" in result.stderr


def test_two_processes_add_their_trials_to_one_study(cli_env, tmp_path):
    import subprocess
    import sys

    import optuna

    from learners.search.study import make_storage
    from tests.conftest import ROOT

    storage = str(tmp_path / "shared.journal")
    args = ["tune", "sine", "--algo", "maml", "--trials", "3", "--iterations", "20", "--rungs", "2", "--val-episodes", "10",
            "--final-iterations", "5", "--storage", storage, "--study-name", "shared"]
    procs = [subprocess.Popen([sys.executable, "-m", "streams.cli", *args, "--seed", str(k), "--out", str(tmp_path / f"p{k}")],
                              env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    study = optuna.load_study(study_name="shared", storage=make_storage(storage))
    assert len(study.trials) == 6 and sorted(t.number for t in study.trials) == list(range(6))


def test_automl_on_a_real_table(cli, tmp_path):
    """River's Phishing data written as a CSV with gaps and a text column, as an agent's log would be."""
    import csv

    from river import datasets

    from learners.tabular.model import TabularModel

    rows = list(datasets.Phishing())
    path = tmp_path / "phishing.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(rows[0][0]) + ["site", "label"])
        for i, (x, y) in enumerate(rows):
            values = ["" if i % 17 == 0 and k == "age_of_domain" else v for k, v in x.items()]
            writer.writerow(values + [("old", "new", "")[i % 3], "phish" if y else "ok"])
    out = tmp_path / "auto"
    summary = json.loads(cli("automl", path, "--target", "label", "--out", out, "--json").stdout)
    assert summary["holdout_score"] > 0.8 and summary["learner"]
    assert (out / "leaderboard.json").is_file()
    model = TabularModel.load(out)
    assert "site=new" in model.names and "age_of_domain" in model.names
    assert set(model.predict_records([{**rows[0][0], "site": "old"}, {"site": "new"}])) <= {"phish", "ok"}
    shown = cli("automl", path, "--target", "label", "--out", tmp_path / "again")
    assert "feature importance" in shown.stdout and "chose" in shown.stderr


def test_automl_errors_say_what_to_do(cli, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    proc = cli("automl", path, "--target", "label", check=False)
    assert proc.returncode == 2 and "no column 'label'" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("automl", tmp_path / "missing.csv", "--target", "y", check=False)
    assert proc.returncode == 2 and "CSV or Parquet" in proc.stderr


def test_a_worker_with_a_bad_setting_stops_at_start_with_one_line(cli_env):
    env = {**cli_env, "METASTREAM_GUARD": "ture"}
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert said == ["error: METASTREAM_GUARD='ture': give 1, true, yes or on, or 0, false, no or off"]
