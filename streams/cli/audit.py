"""``metastream audit MODEL VERSION``: where a version came from, read from the log (parent chain,
the experience offsets it learned from, config, seed, and the decisions about it)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Optional

import typer
from rich.table import Table

from streams.cli.console import UserError, bootstrap_option, console, emit_json, friendly_errors, on_terminal, results
from streams.cli.stream import bootstrap_from

app = typer.Typer(add_completion=False)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")


@app.command("audit")
@friendly_errors
def audit(model: str = typer.Argument(..., help="Model id (or `rebuild`, then the model id)."),
          version: str = typer.Argument(..., help="Version number."),
          rebuild_version: Optional[int] = typer.Argument(None, metavar="[VERSION]", help="With `rebuild`: the version number."),
          kafka: Optional[str] = bootstrap_option("Bootstrap servers (default $METASTREAM_KAFKA)."),
          models_topic: str = typer.Option("models"), events_topic: str = typer.Option("events"),
          json_out: bool = typer.Option(False, "--json", help="The whole trail (or the rebuild's report) as one JSON object.")) -> None:
    """The lineage of a version: parent chain, experience offset ranges, config, seed, decisions.

    `metastream audit rebuild MODEL VERSION` re-runs the update that made the version from the log
    alone (the experiences its lineage names, its recipe's seed and inputs) and checks that the
    weights come out byte-identical; it exits 1 with what differs when they do not."""
    import asyncio

    from streams.audit.trail import NotOnTheLog, audit_trail
    from streams.kafka.topics import read_records

    if model == "rebuild":
        if rebuild_version is None:
            raise UserError("usage: metastream audit rebuild MODEL VERSION")
        return _rebuild(version, rebuild_version, kafka, json_out, models_topic, events_topic)
    if rebuild_version is not None:
        raise UserError(f"unexpected argument {rebuild_version}: `metastream audit MODEL VERSION` or `metastream audit rebuild MODEL VERSION`")
    try:
        version = int(version)
    except ValueError:
        raise UserError(f"VERSION must be a number, got {version!r}") from None
    bootstrap = bootstrap_from(kafka)
    versions = [rec for _, rec in asyncio.run(read_records(bootstrap, models_topic, "ModelVersion"))]
    events = [rec for _, rec in asyncio.run(read_records(bootstrap, events_topic, "DecisionEvent"))]
    try:
        trail = audit_trail(versions, events, model, version)
    except NotOnTheLog as exc:
        raise UserError(f"{exc}; `metastream models ls` lists what is there") from None
    if json_out or not on_terminal():
        emit_json(trail)
        return
    chain = Table(title=f"{model} v{version}: parent chain" + ("" if trail["chain_complete"] else " (an ancestor is not on the topic)"))
    for col in ("version", "parent", "created (UTC)", "trigger", "seed", "sha256", "signed by"):
        chain.add_column(col, no_wrap=True)
    for link in trail["chain"]:
        chain.add_row(str(link["version"]), str(link["parent"] or "-"), _iso(link["created_at_ms"]), link["trigger"],
                      str(link["seed"] if link["seed"] is not None else "-"), link["sha256"][:12] + "…", link["signed_by"] or "unsigned")
    results.print(chain)
    ranges = Table(title=f"learned from {trail['messages']} experience messages")
    for col in ("topic", "partition", "first offset", "last offset"):
        ranges.add_column(col)
    for r in trail["lineage"]:
        ranges.add_row(r["topic"], str(r["partition"]), str(r["start_offset"]), str(r["end_offset"]))
    results.print(ranges)
    decisions = Table(title="decisions about it (events)")
    for col in ("time (UTC)", "decision", "cause", "reason"):
        decisions.add_column(col)
    for d in trail["decisions"]:
        decisions.add_row(_iso(d["at_ms"]), d["type"], d["cause"], d["reason"])
    results.print(decisions)
    console.print(f"config: {json.dumps(trail['config'], sort_keys=True)}", highlight=False)


def _rebuild(model: str, version: int, kafka: str | None, json_out: bool, models_topic: str, events_topic: str) -> None:
    import asyncio

    from streams.audit.trail import NotOnTheLog
    from streams.audit.rebuild import NoRecipe, rebuild_version
    from streams.settings import Settings

    bootstrap = bootstrap_from(kafka)
    try:
        with console.status(f"re-running the update that made {model} v{version} from the log ..."):
            report = asyncio.run(rebuild_version(bootstrap, model, version,
                                                 Settings.from_env(models_topic=models_topic, events_topic=events_topic)))
    except (NotOnTheLog, NoRecipe) as exc:
        raise UserError(f"{exc}; `metastream models ls` lists what is there") from None
    if json_out or not on_terminal():
        emit_json(report.to_dict())
    elif report.identical:
        console.print(f"[green]{model} v{version} rebuilt byte-identical[/green]: sha256 {report.rebuilt_sha256} "
                      f"({report.messages} experience messages replayed, {report.seconds:.1f}s)")
    else:
        console.print(f"[red]{model} v{version} did not rebuild identically[/red] (published sha256 {report.expected_sha256}, "
                      f"rebuilt {report.rebuilt_sha256 or '-'}):")
        for line in report.differences:
            console.print(f"  - {line}", highlight=False)
    if not report.identical:
        raise typer.Exit(1)
