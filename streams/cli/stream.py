"""Streaming CLI commands: broker, worker, up, settings."""

from __future__ import annotations

import signal
import time
from typing import Optional

import typer
from rich.table import Table

from streams.cli.console import UserError, bootstrap_option, console, emit_tsv, friendly_errors, on_terminal, results

app = typer.Typer(add_completion=False)


def bootstrap_from(kafka: Optional[str]) -> str:
    """``--kafka`` or ``$METASTREAM_KAFKA``, or an error that says how to get a broker."""
    from streams.settings import Settings

    bootstrap = kafka or Settings.from_env().broker.bootstrap
    if not bootstrap:
        raise UserError("no broker: pass --bootstrap-server HOST:PORT or set METASTREAM_KAFKA (start one with 'metastream broker')")
    return bootstrap


@app.command("broker")
@friendly_errors
def broker_cmd(port: Optional[int] = typer.Option(None, help="Loopback port (default: a free one)."),
               topics: bool = typer.Option(True, help="Create metastream's topics.")) -> None:
    """Start the embedded Kafka-protocol broker (Tansu, memory storage) and print its bootstrap address."""
    from streams.kafka.broker import EmbeddedBroker, ensure_topics_sync
    from streams.settings import Settings

    settings = Settings.from_env()
    with EmbeddedBroker(port) as broker:
        if topics:
            ensure_topics_sync(broker.bootstrap, settings.topics.configs(), settings.broker.partitions)
        print(broker.bootstrap, flush=True)
        console.print(f"embedded broker on [bold]{broker.bootstrap}[/] (memory storage); Ctrl-C stops it", highlight=False)
        console.print(f"export METASTREAM_KAFKA={broker.bootstrap}", highlight=False)
        stop = False

        def _stop(*_):
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop and broker.process and broker.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@app.command("worker")
@friendly_errors
def worker_cmd(kafka: Optional[str] = bootstrap_option("Bootstrap servers (default $METASTREAM_KAFKA; embedded broker if unset)."),
               metrics_port: Optional[int] = typer.Option(None, help="Prometheus port (0: off; default 9108)."),
               metrics_host: Optional[str] = typer.Option(None, help="Address the metrics endpoint binds (default 127.0.0.1)."),
               loglevel: str = typer.Option("WARNING", help="Faust/worker log level.")) -> None:
    """Run a stream worker: ingest experiences, detect drift, meta-update, publish model versions."""
    from streams.settings import Settings
    from streams.worker.run import run_worker

    run_worker(Settings.from_env(kafka=kafka, metrics_port=metrics_port, metrics_host=metrics_host), loglevel=loglevel)


@app.command("up")
@friendly_errors
def up_cmd(metrics_port: Optional[int] = typer.Option(None, help="Prometheus port (0: off)."),
           loglevel: str = typer.Option("WARNING")) -> None:
    """Start the embedded broker and a worker on it, in this process."""
    from streams.settings import Settings
    from streams.worker.run import run_worker

    run_worker(Settings.from_env(metrics_port=metrics_port).replaced(kafka=None), loglevel=loglevel)


@app.command("settings")
@friendly_errors
def settings_cmd(markdown: bool = typer.Option(False, "--markdown", help="print docs/settings.md (the page is generated with this)")) -> None:
    """Every worker setting: its METASTREAM_* variable, default, and what it does."""
    from streams.settings import Settings, settings_page

    if markdown:
        print(settings_page(), end="")
        return
    rows = [[component, *row] for component, _, part in Settings.sections() for row in part]
    if not on_terminal():
        emit_tsv(["component", "variable", "default", "meaning"], rows)
        return
    table = Table(title="worker settings (environment variables)")
    for col in ("component", "variable", "default", "meaning"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    results.print(table)
