"""The ``metastream`` command line: one typer app; each group of commands lives in its own module."""

from __future__ import annotations

import typer

from . import cli_continual, cli_stream, offline

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="metastream: agents that learn to learn from a live stream.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.registered_commands.extend(offline.app.registered_commands)
app.registered_commands.extend(cli_stream.app.registered_commands)
app.registered_commands.extend(cli_continual.app.registered_commands)
app.registered_groups.extend(cli_stream.app.registered_groups)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
