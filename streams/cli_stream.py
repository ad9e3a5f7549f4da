"""Streaming CLI commands: broker, worker, up, models ls|show, replay (and demo, in demo.py)."""

from __future__ import annotations

from enum import Enum

import asyncio
import json
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .console import UserError, console, friendly_errors

app = typer.Typer(add_completion=False)
models_app = typer.Typer(add_completion=False, help="List and inspect published model versions.", no_args_is_help=True)


def _bootstrap(kafka: Optional[str]) -> str:
    from .settings import Settings

    bootstrap = kafka or Settings.from_env().kafka
    if not bootstrap:
        raise UserError("no broker: pass --kafka HOST:PORT or set METASTREAM_KAFKA (start one with 'metastream broker')")
    return bootstrap


@app.command("broker")
@friendly_errors
def broker_cmd(port: Optional[int] = typer.Option(None, help="Loopback port (default: a free one)."),
               topics: bool = typer.Option(True, help="Create metastream's topics.")) -> None:
    """Start the embedded Kafka-protocol broker (Tansu, memory storage) and print its bootstrap address."""
    from .broker import EmbeddedBroker, ensure_topics_sync
    from .settings import Settings

    settings = Settings.from_env()
    with EmbeddedBroker(port) as broker:
        if topics:
            ensure_topics_sync(broker.bootstrap, settings.topics, settings.partitions)
        print(broker.bootstrap, flush=True)
        console.print(f"embedded broker on [bold]{broker.bootstrap}[/] (memory storage); export METASTREAM_KAFKA={broker.bootstrap}; Ctrl-C stops it")
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
def worker_cmd(kafka: Optional[str] = typer.Option(None, help="Bootstrap servers (default $METASTREAM_KAFKA; embedded broker if unset)."),
               metrics_port: Optional[int] = typer.Option(None, help="Prometheus port (0: off; default 9108)."),
               metrics_host: Optional[str] = typer.Option(None, help="Address the metrics endpoint binds (default 127.0.0.1)."),
               loglevel: str = typer.Option("WARNING", help="Faust/worker log level.")) -> None:
    """Run a stream worker: ingest experiences, detect drift, meta-update, publish model versions."""
    from .settings import Settings
    from .worker import run_worker

    run_worker(Settings.from_env(kafka=kafka, metrics_port=metrics_port, metrics_host=metrics_host), loglevel=loglevel)


@app.command("up")
@friendly_errors
def up_cmd(metrics_port: Optional[int] = typer.Option(None, help="Prometheus port (0: off)."),
           loglevel: str = typer.Option("WARNING")) -> None:
    """Start the embedded broker and a worker on it, in this process."""
    from .settings import Settings
    from .worker import run_worker

    settings = Settings.from_env(metrics_port=metrics_port)
    settings.kafka = None
    run_worker(settings, loglevel=loglevel)


async def _read_versions(bootstrap: str, topic: str) -> list[dict]:
    from .rebuild import MODEL_VERSIONS, _read_range

    out = []
    async for msg in _read_range(bootstrap, topic, None):
        try:
            rec = MODEL_VERSIONS.decode(msg.value)
        except Exception:  # noqa: BLE001
            continue
        rec["_offset"], rec["_partition"] = msg.offset, msg.partition
        out.append(rec)
    return out


@models_app.command("ls")
@friendly_errors
def models_ls(kafka: Optional[str] = typer.Option(None, help="Bootstrap servers (default $METASTREAM_KAFKA)."),
              topic: str = typer.Option("models"), json_out: bool = typer.Option(False, "--json")) -> None:
    """Every published version, per model id, oldest first."""
    versions = asyncio.run(_read_versions(_bootstrap(kafka), topic))
    rows = [{"model_id": r["model_id"], "version": r["version"], "parent": r["parent_version"], "algorithm": r["algorithm"],
             "created": datetime.fromtimestamp(r["created_at_ms"] / 1000, timezone.utc).isoformat(timespec="seconds"),
             "sha256": r["sha256"][:12], "stage": r["rollout_stage"], "metrics": r["metrics"]} for r in versions]
    if json_out:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return
    table = Table(title=f"model versions on {topic}")
    for col in ("model", "version", "parent", "algorithm", "created (UTC)", "sha256", "stage"):
        table.add_column(col)
    for r in sorted(rows, key=lambda r: (r["model_id"], r["version"])):
        table.add_row(r["model_id"], str(r["version"]), str(r["parent"] or "-"), r["algorithm"], r["created"], r["sha256"], r["stage"])
    console.print(table)


@models_app.command("show")
@friendly_errors
def models_show(model_id: str = typer.Argument(...), version: Optional[int] = typer.Option(None, help="Default: the latest."),
                kafka: Optional[str] = typer.Option(None), topic: str = typer.Option("models"),
                save: Optional[Path] = typer.Option(None, help="Write the weights to this .safetensors file.")) -> None:
    """One version's metadata, metrics and lineage as JSON (weights summarised, or saved with --save)."""
    versions = [r for r in asyncio.run(_read_versions(_bootstrap(kafka), topic)) if r["model_id"] == model_id]
    if version is not None:
        versions = [r for r in versions if r["version"] == version]
    if not versions:
        raise UserError(f"no version{'' if version is None else f' {version}'} of {model_id!r} on {topic}; see 'metastream models ls'")
    rec = max(versions, key=lambda r: r["version"])
    if save:
        save.write_bytes(rec["weights"])
    out = {k: v for k, v in rec.items() if k not in ("weights",)}
    out["weights_bytes"] = len(rec["weights"])
    out["config"] = json.loads(out.pop("config_json"))
    print(json.dumps(out, indent=2, sort_keys=True, default=str))


def _parse_time(text: str) -> int:
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
               kafka: Optional[str] = typer.Option(None)) -> None:
    """Re-read a range of a topic, decoded, as JSON lines on stdout (bytes fields summarised)."""
    from .replay import replay

    asyncio.run(replay(_bootstrap(kafka), topic, from_offset, _parse_time(from_time) if from_time else None,
                       to_offset, _parse_time(to_time) if to_time else None, partition))


class DemoTask(str, Enum):
    sine = "sine"
    digits = "digits"


@app.command("demo")
@friendly_errors
def demo_cmd(seconds: float = typer.Option(100.0, help="How long the fleet publishes."),
             rate: float = typer.Option(1000.0, help="Experiences per second the fleet publishes."),
             drift_at: float = typer.Option(0.45, help="When to inject the drift, as a fraction of --seconds."),
             seed: int = typer.Option(0),
             task: DemoTask = typer.Option(DemoTask.sine, help="sine: regression, the frequency doubles at the drift; "
                                           "digits: 5-way 1-shot MNIST digits (../shared/data), the images turn a quarter."),
             json_out: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout.")) -> None:
    """Embedded broker, a worker, and a simulated fleet of agents with a drift injected midway:
    watch the drift get caught and a new version restore post-drift quality (about 2 minutes)."""
    from .demo import METRIC, run_demo

    s = asyncio.run(run_demo(seconds, drift_at, rate, seed, task.value))
    console.print()
    metric = METRIC[task.value]
    title = ("mean MSE after 10-shot adaptation" if metric == "mse" else "5-way accuracy (%) after 1-shot adaptation, test images")
    table = Table(title=f"summary: {title} (300 fresh tasks each)")
    table.add_column("model")
    table.add_column("tasks as before the drift", justify="right")
    table.add_column("drifted tasks", justify="right")
    sm = s.summary
    fmt = "{:.3f}" if metric == "mse" else "{:.1f}"
    if "pre_drift_version" in sm:
        table.add_row(f"v{int(sm['pre_drift_version'])} (champion when the drift came)", fmt.format(sm[f"pre_on_old_{metric}"]),
                      fmt.format(sm[f"pre_on_drifted_{metric}"]))
    if "latest_version" in sm:
        table.add_row(f"v{int(sm['latest_version'])} (latest)", fmt.format(sm[f"latest_on_old_{metric}"]),
                      fmt.format(sm[f"latest_on_drifted_{metric}"]))
    console.print(table)
    if "drift_caught_after_s" in sm:
        console.print(f"drift injected at {s.drift_injected_at:.1f}s, caught {sm['drift_caught_after_s']:.1f}s later; "
                      f"first new version {sm.get('first_version_after_drift_s', float('nan')):.1f}s after the drift; "
                      f"{len(s.versions)} versions published, {s.rejected} rejected")
    else:
        console.print("[yellow]no drift alarm was raised during the demo[/]")
    if json_out:
        from .console import emit_json

        emit_json({**sm, "versions": len(s.versions), "rejected": s.rejected, "published_experiences": s.published})


app.add_typer(models_app, name="models")
