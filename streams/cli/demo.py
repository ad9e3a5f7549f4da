"""``metastream demo``: the embedded system with a simulated fleet and a drift, on a live table."""

from __future__ import annotations

import asyncio
from enum import Enum

import typer
from rich.table import Table

from streams.simulation import METRIC
from streams.cli.console import console, emit_json, friendly_errors, results

app = typer.Typer(add_completion=False)
DemoTask = Enum("DemoTask", {name: name for name in METRIC}, type=str)


@app.command("demo")
@friendly_errors
def demo_cmd(seconds: float = typer.Option(100.0, help="How long the fleet publishes."),
             rate: float = typer.Option(1000.0, help="Experiences per second the fleet publishes."),
             drift_at: float = typer.Option(0.45, help="When to inject the drift, as a fraction of --seconds, once an improved "
                                          "version is the champion (at 3/4 of the run at the latest)."),
             seed: int = typer.Option(0),
             task: DemoTask = typer.Option(DemoTask("sine"), help="sine: regression, the frequency doubles at the drift; "
                                           "digits: 5-way 1-shot MNIST digits (../shared/data), the images turn a quarter."),
             mixture: bool = typer.Option(True, "--mixture/--one-model", help="Serve a mixture of meta-models (the default: "
                                          "a component per regime, spawned at the drift, each task routed to the one that "
                                          "fits it) or one model."),
             json_out: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout.")) -> None:
    """Embedded broker, a worker, and a simulated fleet of agents with a drift injected midway:
    watch the drift get caught and a new version restore post-drift quality (about 2 minutes)."""
    from streams.simulation.demo import run_demo

    task_name = task.value
    s = asyncio.run(run_demo(seconds, drift_at, rate, seed, task_name, console, mixture))
    console.print()
    metric = METRIC[task_name]
    title = ("mean MSE after 10-shot adaptation" if metric == "mse" else "5-way accuracy (%) after 1-shot adaptation, test images")
    table = Table(title=f"summary: {title} (300 fresh tasks each)")
    table.add_column("model")
    table.add_column("tasks as before the drift", justify="right")
    table.add_column("drifted tasks", justify="right")
    sm = s.summary
    fmt = "{:.3f}" if metric == "mse" else "{:.1f}"
    if "pre_drift_version" in sm:
        table.add_row(f"v{int(sm['pre_drift_version'])} (" + ("champion" if "champion_at_drift" in sm else "latest")
                      + " when the drift came)", fmt.format(sm[f"pre_on_old_{metric}"]),
                      fmt.format(sm[f"pre_on_drifted_{metric}"]))
    if "latest_version" in sm:
        parts = int(sm.get("latest_components", 1))
        table.add_row(f"v{int(sm['latest_version'])} (latest" + (f", {parts} components)" if parts > 1 else ")"), fmt.format(sm[f"latest_on_old_{metric}"]),
                      fmt.format(sm[f"latest_on_drifted_{metric}"]))
    results.print(table)
    if "drift_caught_after_s" in sm:
        console.print(f"drift injected at {s.drift_injected_at:.1f}s, caught {sm['drift_caught_after_s']:.1f}s later; "
                      f"first new version {sm.get('first_version_after_drift_s', float('nan')):.1f}s after the drift; "
                      f"{len(s.versions)} versions published, {s.rejected} rejected")
    if "champion" in sm:
        console.print(f"most agents were served v{int(sm['champion'])} at the end"
                      + (f" and v{int(sm['champion_at_drift'])} when the drift came" if "champion_at_drift" in sm else ""))
    else:
        console.print("[yellow]no drift alarm was raised during the demo[/]")
    if json_out:
        emit_json({**sm, "versions": len(s.versions), "rejected": s.rejected, "published_experiences": s.published})
