"""``metastream rollout status|start|promote|rollback MODEL`` and ``metastream ab start MODEL``:
an operator's view of the aliases and rollout stage, and requests the worker acts on (they travel
as events on the log, like the worker's own decisions)."""

from __future__ import annotations

import asyncio
import time
from typing import Optional

import typer
from rich.table import Table

from streams.cli.console import UserError, console, emit_json, friendly_errors, on_terminal
from streams.cli.stream import bootstrap_from

app = typer.Typer(add_completion=False)
rollout_app = typer.Typer(add_completion=False, help="Aliases and rollout stage of a model; promote, roll back, start.",
                          no_args_is_help=True)
ab_app = typer.Typer(add_completion=False, help="A/B tests of two published versions.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")
app.add_typer(ab_app, name="ab")


def read_events(bootstrap: str, topic: str = "events") -> list[dict]:
    from streams.kafka.topics import read_records

    return [rec for _, rec in asyncio.run(read_records(bootstrap, topic, "DecisionEvent"))]


def send_request(bootstrap: str, kind, model_id: str, version: int | None, topic: str = "events", **typed) -> None:
    """An operator's request as a DecisionEvent (``typed``: e.g. the ``ab_test`` it asks for)."""
    from aiokafka import AIOKafkaProducer

    from streams.records.wire import Cause, decision

    async def send() -> None:
        from streams.kafka.connection import client_options
        from streams.kafka.durability import producer_options

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **await producer_options(bootstrap), **client_options())
        await producer.start()
        try:
            await producer.send_and_wait(topic, decision(kind, Cause.OPERATOR, model_id, "requested by an operator", {}, version,
                                                             **typed),
                                         key=model_id.encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def aliases_of(bootstrap: str, model_id: str):
    from streams.records.aliases import aliases_from_events

    events = read_events(bootstrap)
    aliases = aliases_from_events(events).get(model_id)
    if aliases is None:
        raise UserError(f"no decision of model {model_id!r} on the events topic: is a worker serving it? (see 'metastream models ls')")
    return aliases, [e for e in events if e["model_id"] == model_id]


@rollout_app.command("status")
@friendly_errors
def status_cmd(model_id: str = typer.Argument(...), kafka: Optional[str] = typer.Option(None),
               json_out: bool = typer.Option(False, "--json", help="One JSON object on stdout.")) -> None:
    """Champion, canary and its share of agents, challenger, A/B test, and the latest stage changes."""
    aliases, _ = aliases_of(bootstrap_from(kafka), model_id)
    if json_out or not on_terminal():
        emit_json({"model_id": model_id, **aliases.to_dict(), "history": aliases.history[-10:]})
        return
    table = Table(title=f"{model_id}: aliases and rollout")
    table.add_column("alias")
    table.add_column("version", justify="right")
    table.add_row("champion", f"v{aliases.champion}" if aliases.champion else "-")
    table.add_row("canary", f"v{aliases.canary} at {aliases.share:g}% (stage {aliases.stage + 1})" if aliases.canary else "-")
    table.add_row("challenger", f"v{aliases.challenger}" if aliases.challenger else "-")
    if aliases.ab:
        table.add_row("A/B test", f"v{aliases.ab.a} vs v{aliases.ab.b} ({aliases.ab.split:g}% on b)")
    console.print(table)
    for change in aliases.history[-8:]:
        console.print(f"  {change['event']} v{change['version']} share {change['share']:g}%")


def _request(kind_name: str, model_id: str, version: Optional[int], kafka: Optional[str], **typed) -> None:
    from streams.records.wire import DecisionType

    bootstrap = bootstrap_from(kafka)
    aliases, _ = aliases_of(bootstrap, model_id)
    kind = DecisionType[kind_name]
    if kind in (DecisionType.PROMOTE_REQUESTED, DecisionType.ROLLBACK_REQUESTED) and aliases.canary is None:
        raise UserError(f"{model_id} has no rollout running (champion v{aliases.champion}); see 'metastream rollout status {model_id}'")
    send_request(bootstrap, kind, model_id, version if version is not None else aliases.canary, **typed)
    console.print(f"asked the worker: {kind.value} for {model_id}" + (f" v{version}" if version else ""))


@rollout_app.command("start")
@friendly_errors
def start_cmd(model_id: str = typer.Argument(...), version: int = typer.Option(..., help="A published version to roll out."),
              kafka: Optional[str] = typer.Option(None)) -> None:
    """Roll out a published version as the canary (replacing any running rollout)."""
    _request("ROLLOUT_REQUESTED", model_id, version, kafka)


@rollout_app.command("promote")
@friendly_errors
def promote_cmd(model_id: str = typer.Argument(...), kafka: Optional[str] = typer.Option(None)) -> None:
    """Make the canary the champion now."""
    _request("PROMOTE_REQUESTED", model_id, None, kafka)


@rollout_app.command("rollback")
@friendly_errors
def rollback_cmd(model_id: str = typer.Argument(...), kafka: Optional[str] = typer.Option(None)) -> None:
    """Roll the canary back now: every agent is served the champion."""
    _request("ROLLBACK_REQUESTED", model_id, None, kafka)


@ab_app.command("start")
@friendly_errors
def ab_start_cmd(model_id: str = typer.Argument(...), a: int = typer.Option(..., "--a", help="Version A."),
                 b: int = typer.Option(..., "--b", help="Version B."),
                 split: float = typer.Option(50.0, help="Percent of agents (by stable cohort) on B."),
                 wait: bool = typer.Option(True, help="Wait for the test to decide and print the result."),
                 timeout: float = typer.Option(900.0, help="Seconds to wait."), kafka: Optional[str] = typer.Option(None),
                 json_out: bool = typer.Option(False, "--json")) -> None:
    """Serve A and B to stable cohorts of agents; the test stops itself once an always-valid interval
    of the loss difference excludes 0, and reports effect size, interval, e-value and p-value."""
    from streams.records.wire import ABTestSpec, DecisionType

    if not 0 < split < 100:
        raise UserError(f"--split is the percent of agents on B: between 0 and 100, not {split}")
    bootstrap = bootstrap_from(kafka)
    since = int(time.time() * 1000)
    _request("AB_TEST_REQUESTED", model_id, None, kafka, ab_test=ABTestSpec(a, b, split))
    if not wait:
        return
    deadline = time.monotonic() + timeout
    with console.status(f"A/B test of v{a} against v{b} on {model_id}: waiting for a decision"):
        while time.monotonic() < deadline:
            done = [e for e in read_events(bootstrap) if e["model_id"] == model_id and e["timestamp_ms"] >= since
                    and e["event_type"] == DecisionType.AB_TEST_FINISHED]
            if done:
                break
            time.sleep(2)
        else:
            raise UserError(f"no decision in {timeout:.0f}s; the worker goes on: see 'metastream rollout status {model_id}'")
    f = done[-1]["figures"]
    if json_out or not on_terminal():
        emit_json({"model_id": model_id, "outcome": done[-1]["cause"], "reason": done[-1]["reason"], "a": a, "b": b, "split": split, **f})
        return
    console.print(f"{done[-1]['cause']}: {done[-1]['reason']}")
    if "effect" in f:
        console.print(f"effect (mean loss b - a) {f['effect']:.4g}, always-valid 95% interval [{f['low']:.4g}, {f['high']:.4g}], "
                      f"e-value {f['e_value']:.3g} (p <= {f['p_value']:.3g}); n = {int(f['n_a'])} / {int(f['n_b'])}")


__all__ = ["app"]
