"""``metastream automl``: choose the features and the learner for a table, with the leaderboard
live as successive halving goes, and save a tabular model folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.live import Live
from rich.table import Table as RichTable

from streams.cli.console import console, emit_json, friendly_errors, results

app = typer.Typer()


def _board(rungs: list) -> RichTable:
    table = RichTable(title="leaderboard (successive halving; score on the held-out rows)")
    for col in ("candidate", "rung", "rows learned", "score"):
        table.add_column(col)
    latest = {}
    for r in rungs:
        latest[r.name] = r
    for r in sorted(latest.values(), key=lambda r: (-r.rows, -r.score)):
        table.add_row(r.name, str(r.rung), str(r.rows), f"{r.score:.4f}")
    return table


@app.command("automl")
@friendly_errors
def automl_cmd(
    data: Path = typer.Argument(..., help="A CSV or Parquet file, one row per experience."),
    target: str = typer.Option(..., help="The column to predict."),
    out: Path = typer.Option(Path("runs/automl"), help="Folder for model.safetensors, config.json, leaderboard.json."),
    budget_minutes: Optional[float] = typer.Option(None, help="Stop the halving after this many minutes (default: no limit)."),
    holdout: float = typer.Option(0.2, min=0.05, max=0.5, help="Share of the last rows held out to score candidates."),
    task: Optional[str] = typer.Option(None, help="'classification' or 'regression' (default: guessed from the target)."),
    seed: int = typer.Option(0, help="Seed for weights and shuffles."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Choose the feature pipeline (each step kept only if it helps) and the learner (successive
    halving over linear, MLP and naive Bayes candidates); save the winner trained on every row."""
    from learners.errors import ConfigError
    from learners.tabular.automl import importance_table, leaderboard_rows, run_automl
    from learners.tabular.data import read_table

    if task not in (None, "classification", "regression"):
        raise ConfigError("--task is 'classification' or 'regression'")
    table = read_table(data, target, None if task is None else task == "classification")
    if table.dropped:
        console.print(f"[yellow]dropped columns with more than 20 categories: {', '.join(table.dropped)}[/]")
    rungs: list = []
    with Live(_board(rungs), console=console, transient=json_out) as live:
        def on_rung(r):
            rungs.append(r)
            live.update(_board(rungs))
        result = run_automl(table, budget_minutes * 60 if budget_minutes else None, holdout, seed, on_rung=on_rung)
    result.model.save(out)
    (out / "leaderboard.json").write_text(json.dumps(leaderboard_rows(result.leaderboard), indent=2) + "\n")
    summary = {"out": str(out), "learner": result.leaderboard[0].name, "holdout_score": result.holdout_score,
               "steps": [s.value for s in result.model.pipeline.steps], "rows": len(table),
               "importance": dict(importance_table(result))}
    if json_out:
        emit_json(summary)
        return
    steps = RichTable(title="feature steps (kept only when they raised the probe's held-out score)")
    for col in ("step", "without", "with", "kept"):
        steps.add_column(col)
    for t in result.gate.trials:
        steps.add_row(t.step.value, f"{t.score_without:.4f}", f"{t.score_with:.4f}", "yes" if t.kept else "no")
    results.print(steps)
    imp = RichTable(title="feature importance (held-out score lost when the feature is shuffled)")
    imp.add_column("feature")
    imp.add_column("importance", justify="right")
    for name, value in importance_table(result)[:20]:
        imp.add_row(name, f"{value:+.4f}")
    results.print(imp)
    console.print(f"chose [bold]{summary['learner']}[/] (held-out score {result.holdout_score:.4f}); saved to {out}")
