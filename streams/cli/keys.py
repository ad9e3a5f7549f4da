"""``metastream keys generate``: an Ed25519 key pair for signing model versions (the worker's
``METASTREAM_SIGNING_KEY``) and checking them (subscribers' ``METASTREAM_VERIFY_KEYS``), or for an
operator to sign rollout requests (``--operator-key``) that workers check
(``METASTREAM_OPERATOR_KEYS``)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from streams.cli.console import UserError, console, friendly_errors

app = typer.Typer(add_completion=False)
keys_app = typer.Typer(add_completion=False, help="Keys that sign model versions.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
@friendly_errors
def generate(out: Path = typer.Option(Path("keys"), help="Folder for signing.pem (private) and verify.pem (public)."),
             force: bool = typer.Option(False, help="Overwrite keys already there.")) -> None:
    """Make a signing key (for the worker) and its public key (for subscribers)."""
    from streams.records.signing import Signer

    private, public = out / "signing.pem", out / "verify.pem"
    if private.exists() and not force:
        raise UserError(f"{private} exists; pass --force to replace it (versions it signed will no longer verify)")
    out.mkdir(parents=True, exist_ok=True)
    signer = Signer.generate()
    private.write_bytes(signer.private_pem())
    os.chmod(private, 0o600)
    public.write_bytes(signer.public_pem())
    console.print(f"key {signer.key_id}: worker  [bold]export METASTREAM_SIGNING_KEY={private}[/]\n"
                  f"             subscribers  [bold]export METASTREAM_VERIFY_KEYS={public}[/]\n"
                  f"  or, as an operator's key: you  [bold]export METASTREAM_OPERATOR_KEY={private}[/]; "
                  f"workers  [bold]export METASTREAM_OPERATOR_KEYS={public}[/]", highlight=False)
