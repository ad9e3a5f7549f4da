"""``metastream models ls|show``: the published versions on the models topic."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from streams.cli.console import UserError, bootstrap_option, emit_json, emit_tsv, friendly_errors, on_terminal, results
from streams.cli.stream import bootstrap_from

app = typer.Typer(add_completion=False)
models_app = typer.Typer(add_completion=False, help="List and inspect published model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def read_versions(bootstrap: str, topic: str) -> list[dict]:
    from streams.kafka.topics import read_records

    records = asyncio.run(read_records(bootstrap, topic, "ModelVersion"))
    return [{**rec, "_offset": msg.offset, "_partition": msg.partition} for msg, rec in records]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")


@models_app.command("ls")
@friendly_errors
def models_ls(kafka: Optional[str] = bootstrap_option("Bootstrap servers (default $METASTREAM_KAFKA)."),
              topic: str = typer.Option("models"),
              events_topic: str = typer.Option("events", help="Where the rollout decisions are (a version's stage now)."),
              json_out: bool = typer.Option(False, "--json", help="One JSON object per version on stdout.")) -> None:
    """Every published version, per model id, oldest first (off a terminal: tab-separated, complete),
    with its stage now: PRODUCTION (the champion), CANARY, ROLLED_BACK, RETIRED (an earlier champion)
    or, where no rollout has named it yet, the stage it was published with (CANDIDATE)."""
    from streams.kafka.topics import read_records
    from streams.records.aliases import version_stages

    bootstrap = bootstrap_from(kafka)

    async def both():  # the two topics read at once: each read starts with a round trip for its end offsets
        return await asyncio.gather(read_records(bootstrap, topic, "ModelVersion"),
                                    read_records(bootstrap, events_topic, "DecisionEvent"))

    records, events = asyncio.run(both())
    versions = sorted((rec for _, rec in records), key=lambda r: (r["model_id"], r["version"]))
    stages = version_stages([rec for _, rec in events])
    rows = [{"model_id": r["model_id"], "version": r["version"], "parent": r["parent_version"], "algorithm": r["algorithm"],
             "created": _iso(r["created_at_ms"]), "sha256": r["sha256"],
             "stage": stages.get(r["model_id"], {}).get(r["version"], r["rollout_stage"]), "published_stage": r["rollout_stage"],
             "metrics": r["metrics"], "era_points": {str(e["era"]): e["points"] for e in r["era_points"]}} for r in versions]
    if json_out:
        for row in rows:
            emit_json(row)
        return
    header = ["model", "version", "parent", "algorithm", "created (UTC)", "sha256", "stage"]
    cells = [[r["model_id"], r["version"], r["parent"] or "-", r["algorithm"], r["created"], r["sha256"], r["stage"]] for r in rows]
    if not on_terminal():
        emit_tsv(header, cells)
        return
    table = Table(title=f"model versions on {topic}")
    for col in header:
        table.add_column(col, no_wrap=True)
    for row in cells:
        table.add_row(*(str(c) for c in row[:5]), row[5][:12] + "…", row[6])
    results.print(table)


@models_app.command("show")
@friendly_errors
def models_show(model_id: str = typer.Argument(...), version: Optional[int] = typer.Option(None, help="Default: the latest."),
                kafka: Optional[str] = bootstrap_option(), topic: str = typer.Option("models"),
                save: Optional[Path] = typer.Option(None, help="Write the version to this folder (model.safetensors and "
                                                               "config.json: `evaluate` and METASTREAM_MODELS load "
                                                               "it); a path ending in .safetensors gets the weights only.")) -> None:
    """One version's metadata, metrics and lineage as JSON (weights summarised, or saved with --save);
    a tabular version also shows its pipeline: per feature its mean and spread, log, selection, gap
    flag and permutation importance on held-out tasks (accuracy lost when shuffled), and products."""
    from learners.tabular.standardiser import pipeline_summary

    versions = [r for r in read_versions(bootstrap_from(kafka), topic) if r["model_id"] == model_id]
    if version is not None:
        versions = [r for r in versions if r["version"] == version]
    if not versions:
        raise UserError(f"no version{'' if version is None else f' {version}'} of {model_id!r} on {topic}; see 'metastream models ls'")
    rec = max(versions, key=lambda r: r["version"])
    if save:
        _save(rec, save)
    out = {k: v for k, v in rec.items() if k not in ("weights",)}
    out["weights_bytes"] = len(rec["weights"])
    out["config"] = json.loads(out.pop("config_json"))
    if pipeline := pipeline_summary(rec["weights"], out["config"]):
        out["pipeline"] = pipeline
    print(json.dumps(out, indent=2, sort_keys=True, default=str))


def _save(rec: dict, path: Path) -> None:
    """A version as a model folder (the layout `meta-train --out` writes), or its weights alone."""
    if path.suffix == ".safetensors":
        path.write_bytes(rec["weights"])
        return
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.safetensors").write_bytes(rec["weights"])
    source = {"model_id": rec["model_id"], "version": rec["version"], "sha256": rec["sha256"]}
    (path / "config.json").write_text(json.dumps({"config": json.loads(rec["config_json"]), "metrics": dict(rec["metrics"]),
                                                  "source": source}, indent=2, sort_keys=True))
