"""``metastream transfer SOURCE TARGET --shots K``: train on one domain, adapt to another with K
labels per class by every domain-adaptation method, choose one by cross-validation on those labels,
and report each on the target's unseen rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table as RichTable

from streams.cli.console import bootstrap_option, console, emit_json, friendly_errors, results

app = typer.Typer()


@app.command("transfer")
@friendly_errors
def transfer_cmd(
    source: str = typer.Argument(..., help="mnist, mnist-rotated, mnist-inverted, uci-digits, or a CSV/Parquet table."),
    target: str = typer.Argument(..., help="The same kinds; a table needs the source's columns and classes."),
    shots: int = typer.Option(5, min=1, help="Labelled target examples per class the adaptation may use."),
    label: Optional[str] = typer.Option(None, help="The label column of a table (source and target)."),
    method: Optional[str] = typer.Option(None, help="finetune, head, adabn, adabn_finetune, coral or mmd; default: "
                                                    "the best by cross-validation on the target's labels."),
    out: Optional[Path] = typer.Option(None, help="Save the adapted model here (model.safetensors, transfer.json)."),
    seed: int = typer.Option(0, help="Seed of the label draw, the splits and the weights."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Transfer a classifier from SOURCE to TARGET and show what each adaptation method makes of K labels."""
    import torch
    from safetensors.torch import save_file

    from learners.transfer.transfer_run import load_domain, run_transfer

    torch.set_num_threads(1)
    with console.status("loading the domains") as status:
        src, tgt = load_domain(source, label), load_domain(target, label)
        report = run_transfer(src, tgt, shots, seed, method, progress=lambda text: status.update(text))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in report.model.state_dict().items()}, str(out / "model.safetensors"))
        (out / "transfer.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if json_out:
        emit_json(report.to_dict())
        return
    table = RichTable(title=f"{report.source} -> {report.target}, {shots} labels per class "
                            f"(source accuracy {100 * report.source_accuracy:.1f}%, domain MMD {report.domain_mmd:.3f})")
    for col in ("method", "cross-validated on the labels (%)", "target's unseen rows (%)", ""):
        table.add_column(col)
    table.add_row("source only", "", f"{100 * report.target_accuracy['source only']:.1f}", "")
    for m, cv in report.cross_validated.items():
        table.add_row(m, f"{100 * cv:.1f}", f"{100 * report.target_accuracy[m]:.1f}", "chosen" if m == report.chosen else "")
    results.print(table)
    console.print(f"chose [bold]{report.chosen}[/]: {100 * report.target_accuracy[report.chosen]:.1f}% on the target's "
                  f"unseen rows" + (f"; saved to {out}" if out else ""))


@app.command("similar")
@friendly_errors
def similar_cmd(
    target: str = typer.Argument(..., help="A model id on the models topic, or a CSV/Parquet file of labelled rows."),
    kafka: Optional[str] = bootstrap_option("Bootstrap servers (default: $METASTREAM_KAFKA)."),
    label: Optional[str] = typer.Option(None, help="A file's label column."),
    task_column: Optional[str] = typer.Option(None, help="A file's column naming each row's task (default: one task)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The published models nearest to TARGET by task encoding (what a new agent type would start from)."""
    import asyncio
    import dataclasses

    from streams.settings import Settings
    from streams.audit.similar import nearest
    from streams.cli.stream import bootstrap_from

    bootstrap = bootstrap_from(kafka)
    with console.status("reading the models and their tasks from the log"):
        found = asyncio.run(nearest(bootstrap, Settings.from_env(), target, label, task_column))
    if json_out:
        emit_json({"target": target, "nearest": [dataclasses.asdict(n) for n in found]})
        return
    table = RichTable(title=f"models nearest to {target} (cosine of mean task encodings under each model)")
    for col in ("model", "version", "algorithm", "similarity", "its tasks compared"):
        table.add_column(col)
    for n in found:
        table.add_row(n.model_id, str(n.version), n.algo, f"{n.similarity:.3f}", str(n.tasks))
    results.print(table)
