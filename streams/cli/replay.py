"""``metastream replay``: a range of a topic as JSON lines."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Optional

import typer

from streams.cli.console import UserError, friendly_errors
from streams.cli.stream import bootstrap_from

app = typer.Typer(add_completion=False)


def parse_time(text: str) -> int:
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise UserError(f"cannot read time {text!r}: use ISO 8601, e.g. 2026-11-26T08:00:00") from None


@app.command("replay")
@friendly_errors
def replay_cmd(topic: str = typer.Option(..., help="experiences, models, events or experiences.dlq."),
               from_offset: Optional[int] = typer.Option(None, help="First offset (each partition)."),
               from_time: Optional[str] = typer.Option(None, help="First record time, ISO 8601."),
               to_offset: Optional[int] = typer.Option(None, "--to", help="Last offset, inclusive (default: the end now)."),
               to_time: Optional[str] = typer.Option(None, help="Last record time, ISO 8601."),
               partition: Optional[int] = typer.Option(None, help="Only this partition."),
               full: bool = typer.Option(False, help="Every event and task id of a batch, not a summary."),
               kafka: Optional[str] = typer.Option(None)) -> None:
    """Re-read a range of a topic, decoded, as JSON lines on stdout (bytes fields summarised)."""
    from streams.audit.replay import replay

    asyncio.run(replay(bootstrap_from(kafka), topic, from_offset, parse_time(from_time) if from_time else None,
                       to_offset, parse_time(to_time) if to_time else None, partition, full=full))
