"""``metastream diagnose``: the faults the workers found and healed themselves, from the events
topic (``streams/audit/faults.py``): what, when, found by which event, healed how and how fast."""

from __future__ import annotations

import time
from typing import Optional

import typer
from rich.table import Table

from streams.cli.console import bootstrap_option, emit_json, friendly_errors, on_terminal, results
from streams.cli.rollout import read_events
from streams.cli.stream import bootstrap_from

app = typer.Typer(add_completion=False)


@app.command("diagnose")
@friendly_errors
def diagnose_cmd(kafka: Optional[str] = bootstrap_option(),
                 open_only: bool = typer.Option(False, "--open", help="Only the faults not healed yet."),
                 last: int = typer.Option(30, help="How many of the newest faults to list."),
                 json_out: bool = typer.Option(False, "--json", help="One JSON object on stdout.")) -> None:
    """Faults found by the workers themselves (diagnoses, drifts, faulty versions, crashes, lost members),
    open and healed, with their timings."""
    from streams.audit.faults import faults_from_events

    faults = faults_from_events(read_events(bootstrap_from(kafka)))
    shown = [f for f in faults if not open_only or f.healed_ms is None][-last:]
    healed = [f for f in faults if f.healed_ms is not None]
    if json_out or not on_terminal():
        emit_json({"faults": [f.to_dict() for f in shown], "total": len(faults), "healed": len(healed),
                   "open": len(faults) - len(healed)})
        return
    table = Table(title=f"faults: {len(faults)} found, {len(healed)} healed, {len(faults) - len(healed)} open")
    for column in ("found at", "fault", "model", "about", "found by", "healed", "what was done"):
        table.add_column(column)
    for f in shown:
        about = f.agent_id or (f"v{f.version}" if f.version is not None else "")
        state = "[red]open[/red]" if f.healed_ms is None else f"after {f.healed_s:.1f}s ({f.healed_by})"
        table.add_row(time.strftime("%H:%M:%S", time.localtime(f.found_ms / 1000)), f.kind, f.model_id or "-", about, f.found_by,
                      state, f.detail[:70])
    results.print(table)
