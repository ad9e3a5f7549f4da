"""The ``metastream`` command line: one typer app; each group of commands lives in its own module,
which only parses arguments and prints (the work is library code)."""

from __future__ import annotations

import typer

from streams.cli import audit, automl, continual, demo, keys, models, offline, replay, rollout, search, stream, transfer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="metastream: agents that learn to learn from a live stream.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
for module in (offline, automl, search, stream, models, rollout, replay, demo, continual, keys, audit, transfer):
    app.registered_commands.extend(module.app.registered_commands)
    app.registered_groups.extend(module.app.registered_groups)


def main() -> None:
    app()
