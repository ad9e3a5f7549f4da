"""Offline CLI commands: meta-train, evaluate, eval-oneshot, make-dev-runs, plot, quickstart.

These run the same learners the stream workers run, with no broker involved.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from learners.recipes import ALGORITHMS, TASKS

from streams.cli.console import console, emit_json, friendly_errors, results

app = typer.Typer(add_completion=False)


Task = Enum("Task", {name: name for name in TASKS}, type=str)
Algo = Enum("Algo", {name: name for name in ALGORITHMS}, type=str)


def read_backbone(path: Path, config: dict) -> dict:
    """A backbone spec from a JSON file, checked by building it."""
    import json

    from learners.backbones import build_backbone
    from learners.errors import ConfigError

    try:
        spec = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON ({exc}): pass the backbone.json 'metastream nas' wrote") from None
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"{path} holds no backbone spec: expected an object with a 'name'")
    if config["backbone"].get("out_features") and "out_features" not in spec:
        spec["out_features"] = config["task"]["ways"]  # a gradient learner's head
    try:
        build_backbone(spec)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return spec


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
        console=console, transient=False,
    )


def _fmt(record: dict) -> str:
    keys = [k for k in record if k.startswith(("train_", "val_"))]
    return f"it {record['iteration']}  " + "  ".join(f"{k}={record[k]:.4g}" for k in keys)


def train_with_progress(config: dict, out: Optional[Path], iterations: Optional[int], budget_s: Optional[float],
                        device: str, validate_every: int, final_episodes: int = 600, label: str = "meta-train"):
    import torch

    from learners.run import train_run

    if config["task"]["name"] == "sine":
        torch.set_num_threads(1)  # a 40-40 MLP is far too small to gain from threads; they only add overhead
    with _progress() as bar:
        task = bar.add_task(label, total=1.0, metrics="")

        def on_log(record: dict) -> None:
            bar.update(task, completed=min(record["progress"], 1.0), metrics=_fmt(record))

        learner, result, metrics = train_run(config, out, iterations=iterations, budget_s=budget_s, device=device,
                                             validate_every=validate_every, on_log=on_log, final_episodes=final_episodes)
        bar.update(task, completed=1.0)
    return learner, result, metrics


@app.command("meta-train")
@friendly_errors
def meta_train_cmd(
    task: Task = typer.Argument(..., help="Task family: sine regression, Omniglot, or an image folder (--root)."),
    algo: Algo = typer.Option(Algo("maml"), help="Meta-learning algorithm."),
    out: Path = typer.Option(Path("runs/model"), help="Folder for model.safetensors, config.json, history.jsonl."),
    ways: Optional[int] = typer.Option(None, help="Classes per training episode (classification)."),
    shots: Optional[int] = typer.Option(None, help="Support examples per class (or points per sine task)."),
    queries: Optional[int] = typer.Option(None, help="Query examples per class (or points per sine task)."),
    meta_batch: Optional[int] = typer.Option(None, help="Tasks per meta-update."),
    inner_steps: Optional[int] = typer.Option(None, help="Inner-loop gradient steps while meta-training."),
    test_steps: Optional[int] = typer.Option(None, help="Adaptation steps at evaluation time."),
    inner_lr: Optional[float] = typer.Option(None, help="Inner-loop learning rate."),
    meta_lr: Optional[float] = typer.Option(None, help="Outer (meta) learning rate."),
    image_size: Optional[int] = typer.Option(None, help="Images are resized to this many pixels a side."),
    tta: Optional[int] = typer.Option(None, help="Test-time augmentation copies (metric learners)."),
    root: Optional[Path] = typer.Option(None, help="Data folder: Omniglot zips, or alphabet/character/*.png for 'folder'."),
    backbone: Optional[Path] = typer.Option(None, help="A backbone spec (JSON), e.g. the backbone.json 'metastream nas' writes."),
    val_alphabets: Optional[str] = typer.Option(None, help="Comma-separated alphabets held out for meta-validation ('' for none). "
                                                "Omniglot's default: none, the final model learns all 8 background alphabets; "
                                                "hold out Balinese,Early_Aramaic to use evaluate and make-dev-runs."),
    seed: int = typer.Option(0, help="Seed for weights and task sampling."),
    iterations: Optional[int] = typer.Option(None, help="Stop after this many meta-updates (fully deterministic)."),
    budget_minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes (default 5 if no --iterations)."),
    validate_every: int = typer.Option(200, help="Meta-iterations between validation passes."),
    val_episodes: int = typer.Option(600, help="Meta-validation episodes scored at the end (0 to skip)."),
    device: str = typer.Option("auto", help="'auto' (CUDA if present), 'cpu' or 'cuda'."),
) -> None:
    """Meta-train a learner and save it as safetensors plus a JSON config. Ctrl-C saves and stops."""
    from learners.registry import INNER_LOOP_KEYS, default_config, is_metric, merge

    config = default_config(task.value, algo.value)
    if task.value == "omniglot" and val_alphabets is None:
        val_alphabets = ""  # the final model learns every background alphabet
        console.print("training on all 8 background alphabets (no meta-validation); "
                      "--val-alphabets Balinese,Early_Aramaic holds two out for evaluate and make-dev-runs")
    config = merge(
        config, ways=ways, shots=shots, queries=queries, meta_batch=meta_batch, inner_steps=inner_steps,
        test_steps=test_steps, inner_lr=inner_lr, meta_lr=meta_lr, image_size=image_size, tta=tta,
        root=str(root) if root else None, seed=seed,
        val_alphabets=[a for a in val_alphabets.split(",") if a] if val_alphabets is not None else None,
    )
    if is_metric(config["algo"]):
        for key in INNER_LOOP_KEYS:
            config["learner"].pop(key, None)
    if backbone is not None:
        config = merge({**config, "backbone": read_backbone(backbone, config)})
    budget_s = budget_minutes * 60 if budget_minutes is not None else (None if iterations else 300.0)
    console.print(f"meta-training [bold]{algo.value}[/] on [bold]{task.value}[/] -> {out}")
    _, result, metrics = train_with_progress(config, out, iterations, budget_s, device, validate_every, val_episodes)
    if result.interrupted:
        console.print(f"[yellow]interrupted after {result.iterations} meta-iterations; checkpoint saved to {out}[/]")
        raise typer.Exit(130)
    val = metrics.get("validation")
    if val:
        console.print(f"done: {result.iterations} meta-iterations in {result.seconds:.0f}s; meta-validation "
                      f"{val['metric']} {val['before']:.4g} before -> {val['after']:.4g} ± {val['ci95']:.2g} after adaptation")
    console.print(f"saved to {out}")


@app.command("evaluate")
@friendly_errors
def evaluate_cmd(
    model: Path = typer.Argument(..., help="Folder written by meta-train."),
    episodes: int = typer.Option(600, help="Meta-validation episodes (or sine tasks)."),
    steps: Optional[int] = typer.Option(None, help="Adaptation steps (default: the model's test steps)."),
    ways: Optional[int] = typer.Option(None, help="Classes per episode (default: as trained; metric learners can change it)."),
    shots: Optional[int] = typer.Option(None, help="Support examples per class."),
    seed: int = typer.Option(12345, help="Seed of the evaluation episodes."),
    device: str = typer.Option("auto"),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Mean accuracy (or MSE) with a 95% interval over meta-validation episodes, before and after adaptation."""
    from learners.checkpoint import load_checkpoint
    from learners.evaluation import evaluate_learner
    from learners.registry import build_tasks
    from learners.settings import resolve_device

    dev = resolve_device(device)
    learner, saved = load_checkpoint(model, device=str(dev))
    config = saved["config"]
    if config["task"]["name"] == "sine":
        tasks = build_tasks(config, "val", shots=shots)
    else:
        tasks = build_tasks(config, "val", ways=ways, shots=shots, queries=min(config["task"]["queries"], 5), within_alphabet=True)
    with console.status(f"evaluating on {episodes} episodes"):
        result = evaluate_learner(learner, tasks, episodes=episodes, steps=steps, seed=seed, device=dev)
    if json_out:
        emit_json(result)
        return
    table = Table(title=f"{config['algo']} on {config['task']['name']} ({episodes} meta-validation episodes)")
    for col in ("metric", "before adaptation", "after adaptation", "95% interval"):
        table.add_column(col)
    table.add_row(result["metric"], f"{result['before']:.4f}", f"{result['after']:.4f}", f"± {result['ci95']:.4f}")
    results.print(table)


@app.command("eval-oneshot")
@friendly_errors
def eval_oneshot_cmd(
    runs: Path = typer.Option(..., help="Folder holding run01..runNN in Lake et al.'s layout."),
    model: Path = typer.Option(..., help="Folder written by meta-train."),
    steps: Optional[int] = typer.Option(None, help="Adaptation steps for gradient-based learners."),
    tta: int = typer.Option(4, min=0, help="Distorted copies averaged into each embedding (protonet, matching); 0 switches "
                                             "test-time augmentation off. On by default: it lowered the fold-validation "
                                             "error on every fold."),
    device: str = typer.Option("auto"),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Score Lake et al.'s 20-way within-alphabet one-shot runs: error rate overall and per run."""
    from learners.checkpoint import load_checkpoint
    from learners.oneshot import read_runs, score_runs
    from learners.settings import resolve_device

    dev = resolve_device(device)
    learner, saved = load_checkpoint(model, device=str(dev))
    if (runs / "alphabets.txt").is_file():  # written by make-dev-runs: were these alphabets held out?
        seen = set((runs / "alphabets.txt").read_text().split()) - set(saved["config"]["task"].get("val_alphabets") or ())
        if seen:
            console.print(f"[yellow]warning: {model} was trained on {', '.join(sorted(seen))}, which these runs are drawn from: "
                          "this error is not a held-out figure (meta-train with --val-alphabets "
                          f"{','.join(sorted(seen))} for one)[/]")
    if hasattr(learner, "tta"):  # metric learners embed: augmentation needs no retraining
        learner.tta = tta
    result = score_runs(learner, read_runs(runs), saved["config"]["task"].get("image_size", 28), steps, dev)
    if json_out:
        emit_json(result)
        return
    table = Table(title=f"one-shot runs in {runs}")
    table.add_column("run")
    table.add_column("error rate", justify="right")
    for name, err in result["runs"].items():
        table.add_row(name, f"{100 * err:.1f}%")
    table.add_row("[bold]all", f"[bold]{100 * result['error_rate']:.2f}%")
    results.print(table)


@app.command("make-dev-runs")
@friendly_errors
def make_dev_runs_cmd(
    out: Path = typer.Option(Path("runs/dev-oneshot"), help="Where to write run01..runNN."),
    alphabets: str = typer.Option("Balinese,Early_Aramaic", help="Held-out background alphabets to draw from."),
    runs: int = typer.Option(20, help="Number of runs."),
    seed: int = typer.Option(0),
    root: Optional[Path] = typer.Option(None, help="Folder with the Omniglot background zips."),
) -> None:
    """Build 20-way within-alphabet one-shot runs, in Lake's layout, from background alphabets a model
    was not trained on: a development stand-in for the held-out test runs."""
    from learners.tasks import load_omniglot_background, read_background
    from learners.oneshot import make_dev_runs

    names = [a for a in alphabets.split(",") if a]
    charset = load_omniglot_background(root).subset_alphabets(names)
    make_dev_runs(charset, read_background(root), out, runs=runs, seed=seed)
    console.print(f"wrote {runs} runs from {', '.join(names)} to {out}")


@app.command("plot")
@friendly_errors
def plot_cmd(model: Path = typer.Argument(..., help="Folder written by meta-train."),
             out: Optional[Path] = typer.Option(None, help="PNG path (default MODEL/curves.png).")) -> None:
    """Draw the training curves (loss, accuracy or MSE, training and validation) to a PNG."""
    from learners.checkpoint import read_config, read_history
    from streams.cli.plots import plot_history

    saved = read_config(model)
    path = plot_history(read_history(model), out or model / "curves.png",
                        title=f"{saved['config']['algo']} on {saved['config']['task']['name']}")
    console.print(f"wrote {path}")


@app.command("quickstart")
@friendly_errors
def quickstart_cmd(
    seconds: float = typer.Option(45.0, help="Training seconds per model."),
    out: Path = typer.Option(Path("runs/quickstart"), help="Where the two models are saved."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Meta-train two small models (MAML on sine, ProtoNet on Omniglot) and show few-shot quality
    before and after adaptation on tasks they never saw. About 2 minutes on 2 cores."""
    from learners.registry import default_config, merge

    start = time.perf_counter()
    rows = {}
    plans = [
        ("sine", default_config("sine", "maml"), "maml on sine, 10-shot, 10 steps"),
        ("omniglot", merge(default_config("omniglot", "protonet"), ways=20), "protonet on omniglot, 5-way 1-shot, held-out alphabets"),
    ]
    for name, config, label in plans:
        _, _, metrics = train_with_progress(config, out / name, None, seconds, "auto", 10**9, final_episodes=0, label=name)
        from learners.checkpoint import load_checkpoint
        from learners.evaluation import evaluate_learner
        from learners.registry import build_tasks

        learner, _ = load_checkpoint(out / name)
        tasks = build_tasks(config, "val") if name == "sine" else build_tasks(config, "val", ways=5, shots=1, queries=5, within_alphabet=True)
        rows[name] = {**evaluate_learner(learner, tasks, episodes=300), "label": label}
    table = Table(title="few-shot quality on unseen tasks (300 episodes)")
    for col in ("model", "metric", "before adaptation", "after adaptation"):
        table.add_column(col)
    for r in rows.values():
        table.add_row(r["label"], r["metric"], f"{r['before']:.3f}", f"{r['after']:.3f} ± {r['ci95']:.3f}")
    results.print(table)
    console.print(f"total {time.perf_counter() - start:.0f}s; models in {out}")
    if json_out:
        emit_json({k: {m: v for m, v in r.items() if m != "label"} for k, r in rows.items()})
