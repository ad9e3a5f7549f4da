"""Shared console helpers for the CLI: one rich console on stderr, errors that say what to do, and
plain output when nobody is looking at a terminal."""

from __future__ import annotations

import functools
import json
import sys
from typing import Callable

import typer
from rich.console import Console

from learners.errors import ConfigError

from streams.kafka.topics import TopicNotFound

# off a terminal (a log, a pipe) rich neither wraps lines nor writes control codes
console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())


class UserError(Exception):
    """An error the user can fix; its message says how."""


EXPECTED = (UserError, ConfigError, FileNotFoundError, TopicNotFound)  # anything else is a bug: it keeps its traceback


def friendly_errors(fn: Callable) -> Callable:
    """Turn the errors a user can fix into a one-line message and exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EXPECTED as exc:
            msg = exc.args[0] if exc.args else str(exc)
            console.print(f"[bold red]error:[/] {msg}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def emit_json(obj) -> None:
    """One JSON object on stdout (everything else goes to stderr)."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def on_terminal() -> bool:
    return sys.stdout.isatty()


def emit_tsv(header: list[str], rows: list[list]) -> None:
    """A header line and one tab-separated line per row on stdout: complete values, nothing cut."""
    for row in [header, *rows]:
        sys.stdout.write("\t".join(str(c) for c in row) + "\n")
    sys.stdout.flush()
