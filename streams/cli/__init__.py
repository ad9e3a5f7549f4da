"""The ``metastream`` command line: one typer app; each group of commands lives in its own module,
which only parses arguments and prints (the work is library code)."""

from __future__ import annotations

import logging

import typer

from streams.cli import (audit, automl, continual, demo, diagnose, keys, models, offline, registry, replay, rollout, search, stream,
                         transfer)

app = typer.Typer(
    no_args_is_help=True,
    help="metastream: agents that learn to learn from a live stream.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
QUIET_KAFKA_LOG = ("aiokafka",)  # its connection errors are said once, by the command, as one line
LONG_RUNNING = ("worker", "demo", "broker")  # commands whose log a person reads: the client's own lines stay


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"metastream {version('metastream')}")
        except PackageNotFoundError:
            typer.echo("metastream (not installed: run from a source checkout)")
        raise typer.Exit()


@app.callback()
def _main(ctx: typer.Context,
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print metastream's version and exit.")) -> None:
    """metastream: agents that learn to learn from a live stream."""
    if ctx.invoked_subcommand not in LONG_RUNNING:
        for name in QUIET_KAFKA_LOG:
            logging.getLogger(name).setLevel(logging.CRITICAL)
for module in (offline, automl, search, stream, models, registry, rollout, replay, demo, continual, keys, audit, diagnose, transfer):
    app.registered_commands.extend(module.app.registered_commands)
    app.registered_groups.extend(module.app.registered_groups)


def main() -> None:
    app()
