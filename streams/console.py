"""Shared console helpers for the CLI: one rich console, and errors that say what to do."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import typer
from rich.console import Console

console = Console(stderr=True)


class UserError(Exception):
    """An error the user can fix; its message says how."""


def friendly_errors(fn: Callable) -> Callable:
    """Turn expected failures into a one-line message and exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (UserError, FileNotFoundError, ValueError, KeyError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            console.print(f"[bold red]error:[/] {msg}")
            raise typer.Exit(2) from None

    return wrapper


def emit_json(obj) -> None:
    """One JSON object on stdout (everything else goes to stderr)."""
    import json

    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()
