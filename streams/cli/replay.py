"""``metastream replay``: a range of a topic as JSON lines."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Optional

import typer

from streams.cli.console import UserError, bootstrap_option, friendly_errors
from streams.cli.stream import bootstrap_from

app = typer.Typer(add_completion=False)


def parse_time(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time; one without a zone is UTC (as listings print).

    >>> parse_time("1970-01-01T00:00:01"), parse_time("1970-01-01T01:00:01+01:00"), parse_time("1970-01-01T00:00:01Z")
    (1000, 1000, 1000)
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"cannot read time {text!r}: use ISO 8601, e.g. 2026-11-26T08:00:00 (UTC) or with a zone, "
                        "2026-11-26T09:00:00+01:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@app.command("replay")
@friendly_errors
def replay_cmd(topic: str = typer.Option(..., help="experiences, models, events or experiences.dlq."),
               from_offset: Optional[int] = typer.Option(None, help="First offset (each partition)."),
               from_time: Optional[str] = typer.Option(None, help="First record time, ISO 8601 (UTC unless a zone is "
                                                                  "given); each partition is read from there."),
               to_offset: Optional[int] = typer.Option(None, "--to", help="Last offset, inclusive (default: the end now)."),
               to_time: Optional[str] = typer.Option(None, help="Last record time, ISO 8601 (UTC unless a zone is given)."),
               partition: Optional[int] = typer.Option(None, help="Only this partition."),
               max_messages: Optional[int] = typer.Option(None, min=1, help="Stop after this many messages."),
               follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing messages as they arrive (Ctrl-C stops)."),
               full: bool = typer.Option(False, help="Every event and task id of a batch, not a summary."),
               kafka: Optional[str] = bootstrap_option()) -> None:
    """Re-read a range of a topic, decoded, as JSON lines on stdout (bytes fields summarised)."""
    from streams.audit.replay import replay

    try:
        asyncio.run(replay(bootstrap_from(kafka), topic, from_offset, parse_time(from_time) if from_time else None,
                           to_offset, parse_time(to_time) if to_time else None, partition, full=full,
                           max_messages=max_messages, follow=follow))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
