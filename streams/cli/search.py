"""``metastream tune`` and ``metastream nas``: search hyperparameters (Optuna) or architectures,
with a live table, then train the winner into a normal model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.live import Live
from rich.table import Table

from learners.recipes import ALGORITHMS, TASKS

from streams.cli.console import console, emit_json, friendly_errors
from streams.cli.offline import Algo, Task, _progress

app = typer.Typer(add_completion=False)


def trial_table(study, title: str, shown: int = 12) -> Table:
    import optuna

    table = Table(title=title)
    for col in ("trial", "state", "error", "best", "parameters"):
        table.add_column(col, justify="right" if col in ("trial", "error", "best") else "left")
    best = float("inf")
    rows = []
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            best = min(best, t.value)
        last = t.value if t.value is not None else (max(t.intermediate_values.items())[1] if t.intermediate_values else None)
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        params = f"{t.user_attrs['known']} (given): {params}" if t.user_attrs.get("known") else params
        rows.append((str(t.number), t.state.name.lower(), "-" if last is None else f"{last:.4g}",
                     "-" if best == float("inf") else f"{best:.4g}", params))
    for row in rows[-shown:]:
        table.add_row(*row)
    return table


@app.command("tune")
@friendly_errors
def tune_cmd(
    task: Task = typer.Argument(..., help="Task family: sine regression, Omniglot, or an image folder (--root)."),
    algo: Algo = typer.Option(Algo("maml"), help="Learner family to tune."),
    trials: int = typer.Option(20, min=1, help="Trials this process runs (others may add to the same study)."),
    budget_minutes: Optional[float] = typer.Option(None, help="Stop starting trials after this many minutes."),
    sampler: str = typer.Option("tpe", help="tpe (default), gp (Gaussian-process Bayesian optimisation) or random."),
    pruner: str = typer.Option("sha", help="sha (successive halving), hyperband, median or none."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage shared by processes: sqlite:///x.db, any database URL, "
                                          "or a journal file path (default OUT/study.journal)."),
    study_name: Optional[str] = typer.Option(None, help="Study to create or join (default TASK-ALGO)."),
    iterations: int = typer.Option(400, help="With --final-iterations: meta-iterations of one trial at full fidelity."),
    rungs: int = typer.Option(4, help="With --final-iterations: validation reports per trial (where the pruner may stop it)."),
    min_seconds: Optional[float] = typer.Option(None, help="The smallest rung, in seconds of training (default: a ninth of "
                                                "--final-minutes); rungs grow 3x up to the final budget."),
    val_episodes: int = typer.Option(100, help="Meta-validation episodes per report."),
    final_minutes: float = typer.Option(5.0, help="Meta-training budget of the winning configuration, and of a trial that "
                                        "reaches the top rung."),
    final_iterations: Optional[int] = typer.Option(None, help="Instead of --final-minutes: this many meta-iterations."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="'auto' (CUDA if present), 'cpu' or 'cuda'."),
    out: Path = typer.Option(Path("runs/tuned"), help="Model folder of the winner, plus study.json and the plots."),
    json_out: bool = typer.Option(False, "--json", help="Print the study's summary as one JSON object on stdout."),
) -> None:
    """Search a learner's hyperparameters on meta-validation tasks (Optuna, pruned on intermediate
    scores), then meta-train the best configuration and save it as a model folder.

    The search knows its budget: a trial trains for --final-minutes of wall-clock time at most (the
    top rung is the final budget, so a configuration slow per iteration pays for it), successive
    halving stops weak ones at rungs of a ninth and a third of it, and the task's default configuration is
    the first trial. --final-iterations switches to trials of --iterations meta-iterations."""
    from learners.search import Fidelity
    from learners.search.budget import WallBudget
    from learners.search.tune import tune

    title = f"tuning {algo.value} on {task.value} ({sampler}, {pruner}): error after adaptation on meta-validation tasks"
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        def on_trial(study, _trial) -> None:
            live.update(trial_table(study, title))

        with _progress() as bar:
            final = bar.add_task("final training", total=1.0, metrics="", visible=False)

            def on_final(record: dict) -> None:
                bar.update(final, visible=True, completed=min(record.get("progress", 0.0), 1.0))

            result = tune(task.value, algo.value, out, trials=trials, budget_s=budget_minutes * 60 if budget_minutes else None,
                          sampler=sampler, pruner=pruner, storage=storage, study_name=study_name,
                          fidelity=Fidelity(iterations, rungs, val_episodes), final_iterations=final_iterations,
                          final_budget_s=final_minutes * 60, seed=seed, device=device, on_trial=on_trial, on_final_log=on_final,
                          budget=None if final_iterations else WallBudget(final_minutes * 60, min_seconds or final_minutes * 60 / 9,
                                                                          val_episodes=val_episodes))
        live.update(trial_table(result.study, title))
    _report_tune(result, out, json_out)


def _report_tune(result, out: Path, json_out: bool) -> None:
    from streams.cli.plots import plot_study

    paths = plot_study(result.study, out)
    summary = result.summary()
    val = result.metrics.get("validation")
    console.print(f"best of {summary['trials']} trials ({summary['pruned']} pruned): error {result.best_value:.4g} "
                  f"({result.metrics.get('best_trial', '')}) with {result.best_params}")
    if val:
        console.print(f"winner meta-trained for {result.metrics['iterations']} iterations: meta-validation {val['metric']} "
                      f"{val['after']:.4g} ± {val['ci95']:.2g}")
    console.print(f"saved to {out} (plots: {', '.join(p.name for p in paths)})")
    if json_out:
        emit_json(summary)


@app.command("nas")
@friendly_errors
def nas_cmd(
    task: Task = typer.Argument(..., help="sine (its MLP) or omniglot (its convolutional embedding)."),
    method: str = typer.Option("evolution", help="evolution (regularized evolution over a genome) or darts (a cell, images)."),
    budget_minutes: float = typer.Option(5.0, help="Search time."),
    evaluations: Optional[int] = typer.Option(None, help="evolution: stop after this many candidates instead."),
    iterations: int = typer.Option(150, help="evolution: meta-iterations that score one candidate."),
    finalists: int = typer.Option(3, help="evolution: the best this many train again for --final-minutes (a final rung of "
                                  "successive halving: short trainings rank backbones noisily); 0: none."),
    final_minutes: float = typer.Option(1.0, help="evolution: the final rung's meta-training per finalist."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("runs/nas"), help="Folder for backbone.json, search.json and architecture.png."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout."),
) -> None:
    """Search a backbone at the hand-picked one's parameter count; write its spec (backbone.json),
    which 'meta-train --backbone' and a worker's model config take, and a picture of it."""
    import json
    import time

    from learners.search import Fidelity
    from learners.search.nas import search_architecture

    from streams.cli.plots import plot_architecture

    total_s = budget_minutes * 60 + (finalists * final_minutes * 60 if method != "darts" else 0)
    with _progress() as bar:
        job = bar.add_task(f"{method} on {task.value}", total=total_s, metrics="")
        started = time.perf_counter()

        def on_progress(record: dict) -> None:
            note = (f"{record['genome']} error {record['error']:.4g}" if "genome" in record
                    else f"it {record['iteration']} loss {record['loss']:.3g} skip share {record['skip_share']:.2f}")
            bar.update(job, completed=min(time.perf_counter() - started, total_s), metrics=note)

        result = search_architecture(task.value, method, budget_s=budget_minutes * 60, evaluations=evaluations,
                                     fidelity=Fidelity(iterations=iterations, rungs=1, val_episodes=100), seed=seed,
                                     on_progress=on_progress, finalists=finalists, final_s=final_minutes * 60)
        bar.update(job, completed=total_s)
    out.mkdir(parents=True, exist_ok=True)
    (out / "backbone.json").write_text(json.dumps(result.spec, indent=2))
    summary = {"method": result.method, "spec": result.spec, "parameters": result.parameters,
               "handpicked_parameters": result.handpicked_parameters, "evaluations": result.evaluations,
               "seconds": round(result.seconds, 1), "best_error": result.best_error, "genome": result.genome}
    (out / "search.json").write_text(json.dumps({**summary, "history": result.history}, indent=2, default=str))
    picture = plot_architecture(result.spec, out / "architecture.png")
    console.print(f"found {result.spec['name']} with {result.parameters:,} parameters (hand-picked: "
                  f"{result.handpicked_parameters:,}) after {result.evaluations} "
                  f"{'candidates' if result.method == 'evolution' else 'search iterations'}; "
                  f"{out / 'backbone.json'}, {picture.name}")
    console.print(f"train it: metastream meta-train {task.value} --backbone {out / 'backbone.json'}")
    if json_out:
        emit_json(summary)


__all__ = ["app", "ALGORITHMS", "TASKS"]
