"""``metastream models get|alias|tag``: a version by ``name@alias`` or number, and the user-defined
aliases and tags of the registry (``streams/client/registry.py``)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Optional

import typer

from streams.cli.console import UserError, bootstrap_option, console, emit_json, friendly_errors
from streams.cli.models import models_app
from streams.cli.stream import bootstrap_from

app = typer.Typer(add_completion=False)  # the commands join `metastream models`
OPERATOR_KEY = typer.Option(None, "--operator-key", envvar="METASTREAM_OPERATOR_KEY",
                            help="PEM file of your operator key: the alias or tag is written signed.")


def _registry(kafka: Optional[str], operator_key: Optional[str] = None):
    from streams.client.registry import ModelRegistry

    return ModelRegistry(bootstrap_from(kafka), operator_key=operator_key)


def _run(coroutine):
    from streams.client.registry import RegistryError

    try:
        return asyncio.run(coroutine)
    except RegistryError as exc:
        raise UserError(f"{exc.args[0]}; see 'metastream models ls'") from None


@models_app.command("get")
@friendly_errors
def get_cmd(ref: str = typer.Argument(..., help="NAME@ALIAS (champion, canary, challenger or your own), NAME/VERSION, or NAME."),
            kafka: Optional[str] = bootstrap_option()) -> None:
    """The version a reference names, with its stage, aliases, tags and metrics, as JSON."""
    emit_json(asdict(_run(_registry(kafka).version(ref))))


@models_app.command("alias")
@friendly_errors
def alias_cmd(model_id: str = typer.Argument(...), alias: str = typer.Argument(..., help="e.g. production, staging."),
              version: int = typer.Argument(..., help="A published version."), operator_key: Optional[str] = OPERATOR_KEY,
              kafka: Optional[str] = bootstrap_option()) -> None:
    """Point a user-defined alias at a version (then `models get NAME@ALIAS` finds it)."""
    _run(_registry(kafka, operator_key).set_alias(model_id, alias, version))
    console.print(f"{model_id}@{alias} -> v{version}")


@models_app.command("tag")
@friendly_errors
def tag_cmd(model_id: str = typer.Argument(...), version: int = typer.Argument(...),
            key: str = typer.Argument(..., help="e.g. description, owner."), value: str = typer.Argument("", help="Empty: remove the tag."),
            operator_key: Optional[str] = OPERATOR_KEY, kafka: Optional[str] = bootstrap_option()) -> None:
    """Tag a version (a "description" tag describes it); an empty value removes the tag."""
    _run(_registry(kafka, operator_key).set_tag(model_id, version, key, value))
    console.print(f"{model_id} v{version}: {key} = {value!r}" if value else f"{model_id} v{version}: {key} removed")


@models_app.command("export")
@friendly_errors
def export_cmd(ref: str = typer.Argument(..., help="NAME@ALIAS, NAME/VERSION or NAME (the newest)."),
               out: str = typer.Option(..., help="The file to write (e.g. sine.pt2)."),
               fmt: str = typer.Option("export", "--format", help="export: a torch.export program (torch.export.load(path)"
                                                                   ".module()); torchscript: torch.jit.load. Neither needs "
                                                                   "metastream."),
               kafka: Optional[str] = bootstrap_option()) -> None:
    """Export a version's network (its meta-learned initialisation or embedding) for a consumer
    without this project; the input shape and config are in the file's metadata.json."""
    import json

    from learners.export import export_program, export_torchscript

    writers = {"export": export_program, "torchscript": export_torchscript}
    if fmt not in writers:
        raise UserError(f"cannot export as {fmt!r}: choose export or torchscript (ONNX is not offered: see docs/worker.md)")
    loaded = _run(_registry(kafka).load(ref))
    path = writers[fmt](loaded.learner, json.loads(loaded.record["config_json"]), out)
    console.print(f"{loaded.model_id} v{loaded.version} -> {path}")
