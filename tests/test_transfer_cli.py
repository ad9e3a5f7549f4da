"""``metastream transfer`` on real data: MNIST to UCI's optical digits, and two tables of River's
ImageSegments rows, one of them with its columns rescaled; errors a user can fix say what to do."""

import json

import numpy as np

from learners.tabular.river_streams import load_stream


def test_transfer_from_mnist_to_uci_digits_reports_every_method_and_saves_the_chosen_one(cli, tmp_path):
    proc = cli("transfer", "mnist", "uci-digits", "--shots", "5", "--json", "--out", tmp_path / "adapted")
    report = json.loads(proc.stdout)
    assert report["source_accuracy"] > 0.9 and report["chosen"] in report["cross_validated"]
    accuracy = report["target_accuracy"]
    assert set(accuracy) == {"source only", "finetune", "head", "adabn", "adabn_finetune", "coral", "mmd"}
    assert accuracy[report["chosen"]] > accuracy["source only"] + 0.2  # measured: 51.9 -> 92.2 (mmd)
    assert (tmp_path / "adapted" / "model.safetensors").stat().st_size > 10_000
    assert json.loads((tmp_path / "adapted" / "transfer.json").read_text())["chosen"] == report["chosen"]


def _csv(path, X, y, names):
    with open(path, "w") as f:
        f.write(",".join([*names, "label"]) + "\n")
        for row, label in zip(X, y):
            f.write(",".join([*(f"{v:.6g}" for v in row), str(label)]) + "\n")


def test_transfer_between_tables_and_the_errors_a_user_can_fix(cli, tmp_path):
    table = load_stream("segment")
    gen = np.random.default_rng(0)
    order = gen.permutation(len(table))
    half = len(order) // 2
    classes = np.asarray(table.classes, dtype=object)
    _csv(tmp_path / "a.csv", table.X[order[:half]], classes[table.y[order[:half]]], table.names)
    scale = 10.0 ** gen.uniform(-1, 1, table.X.shape[1])
    _csv(tmp_path / "b.csv", table.X[order[half:]] * scale, classes[table.y[order[half:]]], table.names)
    report = json.loads(cli("transfer", tmp_path / "a.csv", tmp_path / "b.csv", "--label", "label", "--shots", "5",
                            "--json").stdout)
    assert report["target_accuracy"][report["chosen"]] > 0.6
    assert report["target_accuracy"][report["chosen"]] >= report["target_accuracy"]["source only"]
    _csv(tmp_path / "narrow.csv", table.X[:50, :5], classes[table.y[:50]], table.names[:5])
    wrong = cli("transfer", tmp_path / "a.csv", tmp_path / "narrow.csv", "--label", "label", check=False)
    assert wrong.returncode == 2 and "same columns" in wrong.stderr
    unknown = cli("transfer", "svhn", "uci-digits", check=False)
    assert unknown.returncode == 2 and "named domain" in unknown.stderr
    no_label = cli("transfer", tmp_path / "a.csv", "uci-digits", check=False)
    assert no_label.returncode == 2 and "--label" in no_label.stderr
