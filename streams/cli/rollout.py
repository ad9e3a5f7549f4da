"""``metastream rollout status|start|promote|rollback MODEL`` and ``metastream ab start MODEL``:
an operator's view of the aliases and rollout stage, and requests the worker acts on (they travel
as events on the log, like the worker's own decisions)."""

from __future__ import annotations

import asyncio
import time
from typing import Optional

import typer
from rich.table import Table

from streams.cli.console import UserError, bootstrap_option, console, emit_json, friendly_errors, on_terminal, results
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


def send_request(bootstrap: str, kind, model_id: str, version: int | None, topic: str = "events",
                 operator_key: str | None = None, **typed) -> None:
    """An operator's request as a DecisionEvent (``typed``: e.g. the ``ab_test`` it asks for),
    signed with the operator's key when one is given (a worker with METASTREAM_OPERATOR_KEYS acts
    only on signed ones)."""
    from aiokafka import AIOKafkaProducer

    from schemas import codec_for
    from streams.records.signing import Signer
    from streams.records.wire import Cause, decision_record

    record = decision_record(kind, Cause.OPERATOR, model_id, "requested by an operator", {}, version, **typed)
    if operator_key:
        record.update(Signer.from_file(operator_key).sign(record, "DecisionEvent"))

    async def send() -> None:
        from streams.kafka.connection import client_options
        from streams.kafka.durability import producer_options

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **await producer_options(bootstrap), **client_options())
        await producer.start()
        try:
            await producer.send_and_wait(topic, codec_for("DecisionEvent").encode(record), key=model_id.encode())
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
def status_cmd(model_id: str = typer.Argument(...), kafka: Optional[str] = bootstrap_option(),
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
    results.print(table)
    for change in aliases.history[-8:]:
        console.print(f"  {change['event']} v{change['version']} share {change['share']:g}%")


# what the worker decides when it acts on each request: the request's kind -> the decision's kind
ANSWERS = {"ROLLOUT_REQUESTED": "ROLLOUT_STARTED", "PROMOTE_REQUESTED": "ROLLOUT_PROMOTED",
           "ROLLBACK_REQUESTED": "ROLLED_BACK", "AB_TEST_REQUESTED": "AB_TEST_STARTED"}


def _request(kind_name: str, model_id: str, version: Optional[int], kafka: Optional[str], wait: bool = False,
             timeout: float = 60.0, operator_key: Optional[str] = None, **typed) -> None:
    """Send an operator's request after checking it can be acted on (the model is served, the
    version is published, a rollout is running where one is needed); with ``wait``, until the
    worker's decision is on the log."""
    from streams.records.wire import DecisionType

    bootstrap = bootstrap_from(kafka)
    aliases, _ = aliases_of(bootstrap, model_id)
    kind = DecisionType[kind_name]
    if kind in (DecisionType.PROMOTE_REQUESTED, DecisionType.ROLLBACK_REQUESTED) and aliases.canary is None:
        raise UserError(f"{model_id} has no rollout running (champion v{aliases.champion}); see 'metastream rollout status {model_id}'")
    if version is not None:
        _check_published(bootstrap, model_id, version)
    target = version if version is not None else aliases.canary
    since = int(time.time() * 1000)
    send_request(bootstrap, kind, model_id, target, operator_key=operator_key, **typed)
    console.print(f"asked the worker: {kind.value} for {model_id}" + (f" v{target}" if target else ""))
    if wait:
        answer = _wait_for(bootstrap, model_id, (DecisionType[ANSWERS[kind_name]], DecisionType.REQUEST_REFUSED), target,
                           since, timeout)
        console.print(f"the worker decided: {answer['event_type']} v{answer['version']} ({answer['reason']})")
        if answer["event_type"] == DecisionType.REQUEST_REFUSED:
            raise UserError(f"the worker refused the request: {answer['reason']} (sign it with --operator-key, a key "
                            "whose public half is in the worker's METASTREAM_OPERATOR_KEYS)")


def _check_published(bootstrap: str, model_id: str, version: int) -> None:
    from streams.cli.models import read_versions

    published = sorted(r["version"] for r in read_versions(bootstrap, "models") if r["model_id"] == model_id)
    if version not in published:
        latest = f"its latest is v{published[-1]}" if published else "it has none yet"
        raise UserError(f"{model_id} v{version} is not published ({latest}): see 'metastream models ls'")


def _wait_for(bootstrap: str, model_id: str, kinds: tuple, version: int | None, since_ms: int, timeout: float) -> dict:
    """The worker's first decision of one of ``kinds`` about ``version`` made after ``since_ms``."""
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for the worker's {kinds[0].value} of {model_id}"):
        while time.monotonic() < deadline:
            for event in read_events(bootstrap):
                if (event["model_id"] == model_id and event["event_type"] in kinds and event["timestamp_ms"] >= since_ms
                        and (version is None or event["version"] == version)):
                    return event
            time.sleep(1)
    raise UserError(f"no {kinds[0].value} of {model_id} in {timeout:.0f}s: is a worker running? (the request stays on the "
                    f"log; see 'metastream rollout status {model_id}')")


WAIT = typer.Option(False, "--wait", help="Wait until the worker has acted on the request and print its decision.")
TIMEOUT = typer.Option(60.0, help="Seconds --wait waits.")
OPERATOR_KEY = typer.Option(None, "--operator-key", envvar="METASTREAM_OPERATOR_KEY",
                            help="PEM file of your operator key (`metastream keys generate`): signs the request, which a "
                                 "worker with METASTREAM_OPERATOR_KEYS requires.")


@rollout_app.command("start")
@friendly_errors
def start_cmd(model_id: str = typer.Argument(...), version: int = typer.Option(..., help="A published version to roll out."),
              wait: bool = WAIT, timeout: float = TIMEOUT, operator_key: Optional[str] = OPERATOR_KEY,
              kafka: Optional[str] = bootstrap_option()) -> None:
    """Roll out a published version as the canary (replacing any running rollout)."""
    _request("ROLLOUT_REQUESTED", model_id, version, kafka, wait, timeout, operator_key)


@rollout_app.command("promote")
@friendly_errors
def promote_cmd(model_id: str = typer.Argument(...), wait: bool = WAIT, timeout: float = TIMEOUT,
                operator_key: Optional[str] = OPERATOR_KEY, kafka: Optional[str] = bootstrap_option()) -> None:
    """Make the canary the champion now."""
    _request("PROMOTE_REQUESTED", model_id, None, kafka, wait, timeout, operator_key)


@rollout_app.command("rollback")
@friendly_errors
def rollback_cmd(model_id: str = typer.Argument(...), wait: bool = WAIT, timeout: float = TIMEOUT,
                 operator_key: Optional[str] = OPERATOR_KEY, kafka: Optional[str] = bootstrap_option()) -> None:
    """Roll the canary back now: every agent is served the champion."""
    _request("ROLLBACK_REQUESTED", model_id, None, kafka, wait, timeout, operator_key)


@ab_app.command("start")
@friendly_errors
def ab_start_cmd(model_id: str = typer.Argument(...), a: int = typer.Option(..., "--a", help="Version A."),
                 b: int = typer.Option(..., "--b", help="Version B."),
                 split: float = typer.Option(50.0, help="Percent of agents (by stable cohort) on B."),
                 wait: bool = typer.Option(True, help="Wait for the test to decide and print the result."),
                 timeout: float = typer.Option(900.0, help="Seconds to wait."), operator_key: Optional[str] = OPERATOR_KEY,
                 kafka: Optional[str] = bootstrap_option(),
                 json_out: bool = typer.Option(False, "--json")) -> None:
    """Serve A and B to stable cohorts of agents; the test stops itself once an always-valid interval
    of the loss difference excludes 0, and reports effect size, interval, e-value and p-value."""
    from streams.records.wire import ABTestSpec, DecisionType

    if not 0 < split < 100:
        raise UserError(f"--split is the percent of agents on B: between 0 and 100, not {split}")
    bootstrap = bootstrap_from(kafka)
    for version in (a, b):
        _check_published(bootstrap, model_id, version)
    since = int(time.time() * 1000)
    _request("AB_TEST_REQUESTED", model_id, None, kafka, operator_key=operator_key, ab_test=ABTestSpec(a, b, split))
    if not wait:
        return
    deadline = time.monotonic() + timeout
    with console.status(f"A/B test of v{a} against v{b} on {model_id}: waiting for a decision"):
        while time.monotonic() < deadline:
            done = [e for e in read_events(bootstrap) if e["model_id"] == model_id and e["timestamp_ms"] >= since
                    and e["event_type"] in (DecisionType.AB_TEST_FINISHED, DecisionType.REQUEST_REFUSED)]
            if done and done[-1]["event_type"] == DecisionType.REQUEST_REFUSED:
                raise UserError(f"the worker refused the A/B test: {done[-1]['reason']} (sign it with --operator-key)")
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
