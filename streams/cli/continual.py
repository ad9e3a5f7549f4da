"""``metastream continual-bench``: the continual-learning benchmarks on MNIST (permuted, split) with
every method, a table, a heat-map of each method's accuracy matrix and the average-accuracy curve."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from streams.cli.console import console, emit_json, friendly_errors, results

app = typer.Typer(add_completion=False)


class Benchmark(str, Enum):
    permuted = "permuted"
    split = "split"


class Scenario(str, Enum):
    class_il = "class-il"
    task_il = "task-il"
    domain_il = "domain-il"


def results_table(result) -> Table:
    table = Table(title=result.title())
    for col in result.COLUMNS:
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in result.rows():
        table.add_row(*row)
    return table


def run_with_progress(benchmark: str, scenario: Optional[str], methods: Optional[List[str]], buffer: Optional[int], seeds: int,
                      epochs: Optional[int] = None, quiet: bool = False, iterations: int = 1):
    from learners.continual.benchmark import default_methods, run_benchmark

    count = (len(methods) if methods else len(default_methods(scenario or ("domain-il" if benchmark == "permuted" else "class-il")))) + 2
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=quiet) as bar:
        task = bar.add_task(f"{benchmark} MNIST", total=count * seeds)

        def progress(method: str, seed: int) -> None:
            bar.update(task, advance=1, description=f"{benchmark} MNIST: {method} (seed {seed}) done")

        return run_benchmark(benchmark, scenario, methods, buffer, seeds, epochs, iterations, progress)


@app.command("continual-bench")
@friendly_errors
def continual_bench_cmd(
    benchmark: Benchmark = typer.Argument(..., help="permuted: 20 permuted-MNIST tasks (GEM protocol); split: 5 tasks of 2 digits."),
    scenario: Optional[Scenario] = typer.Option(None, help="split: class-il (default) or task-il; permuted is domain-il."),
    methods: Optional[List[str]] = typer.Option(None, "--methods", "-m", help="Methods to run (repeat or comma-separate): "
                                                 "ewc, er, ewc+er, der, der++, der++wa (class-il), lwf, progressive. Default: all that apply. "
                                                 "finetune and joint always run as bounds."),
    buffer: Optional[int] = typer.Option(None, help="Replay buffer items (default: 1000 permuted, 200 split)."),
    seeds: int = typer.Option(1, min=1, help="Seeds to run; the table shows mean and spread."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Epochs per task (default: 1 permuted, 7 split)."),
    iterations: int = typer.Option(1, min=1, help="SGD steps per incoming batch, each with fresh replay (as MER); "
                                   "1 is the GEM protocol."),
    out: Path = typer.Option(Path("runs/continual"), help="Folder for the PNG heat-maps and curves."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Run a continual-learning benchmark on MNIST and report ACC, BWT, forgetting per method."""
    names = [m.strip() for item in (methods or []) for m in item.split(",") if m.strip() and m.strip() not in ("finetune", "joint")]
    result = run_with_progress(benchmark.value, scenario.value if scenario else None, names or None, buffer, seeds, epochs,
                               quiet=as_json, iterations=iterations)
    from streams.cli.plots import plot_continual

    paths = plot_continual(result, out)
    if as_json:
        emit_json(result.summary())
        return
    results.print(results_table(result))
    best = result.best_method()
    if best:
        acc, _ = result.methods[best].stat("acc")
        console.print(f"best method: [bold]{best}[/] (ACC {acc:.3f})")
    console.print(f"plots: {paths[0].parent}/ ({len(paths)} PNG files)")
