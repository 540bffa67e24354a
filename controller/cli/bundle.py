"""`citygate bundle export | verify | pubkey`: a gateway's bundle as one signed file for flashing offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller.cli.base import app, console
from controller.cli.common import _actor, _db, _domain_error, _fail

bundle_app = typer.Typer(help="A gateway's bundle as one signed file, for flashing offline.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("export")
def bundle_export(
    gateway: Annotated[str, typer.Option(help="The gateway id")],
    out: Annotated[Path, typer.Option(help="The file to write (mode 0600: it holds the key and password)")],
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port as the board reaches the broker "
                                               "(default: CITYGATE_BROKER)")] = None,
) -> None:
    """Rotate the gateway's key and MQTT password (audited; the board's old ones stop working) and write them,
    with its config and its current table sealed with the new key, to one file signed by this controller."""
    from controller import bundles
    from controller.flash_bundle import signed_bundle
    from controller.services.errors import DomainError
    from controller.settings import get_settings

    settings = get_settings()
    try:
        with _db().session() as s:
            doc = signed_bundle(s, gateway, settings, actor=_actor(), broker=broker)
            bundles.write(out, doc)
    except DomainError as e:
        raise _domain_error(e) from None
    except OSError as e:
        raise _fail("--out", f"cannot write {out}: {e.strerror or e}") from None
    console.print(f"bundle for {gateway} written to {out} (mode 0600), table version {doc['table_version']}; "
                  "its new key and password are on the secret audit; the board's old ones no longer work")


@bundle_app.command("verify")
def bundle_verify(
    path: Annotated[Path, typer.Argument(help="The bundle file", exists=True, dir_okay=False)],
    pubkey: Annotated[str | None, typer.Option(help="The controller's public key (hex; `citygate bundle pubkey`)",
                                               envvar="CITYGATE_BUNDLE_PUBKEY")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON")] = False,
) -> None:
    """Check a bundle is whole and signed (by the controller whose key you trust), and what it holds;
    the key and password inside are never shown, only the key's fingerprint."""
    from controller import bundles

    try:
        doc = bundles.read(path, pubkey)
    except bundles.BundleError as e:
        raise _fail(e.field, e.reason) from None
    info = bundles.summary(doc) | {"signed_by_trusted_key": bool(pubkey)}
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    t = Table(title=f"bundle {path}", show_header=False)
    for k, v in info.items():
        t.add_row(k.replace("_", " "), str(v))
    console.print(t)
    if not pubkey:
        console.print("[yellow]whole, but signed by the key it names: give --pubkey (or CITYGATE_BUNDLE_PUBKEY) "
                      "to check it came from your controller[/]")


@bundle_app.command("pubkey")
def bundle_pubkey() -> None:
    """This controller's bundle-signing public key (hex), to pin where bundles are checked."""
    from controller import bundles
    from controller.settings import get_settings

    typer.echo(bundles.public_key(get_settings().secret_key))
