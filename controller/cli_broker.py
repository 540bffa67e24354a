"""`citygate broker config`: the credentials and ACL of DESIGN §3 for an external Mosquitto.

The embedded broker enforces them by itself; Mosquitto reads them from files. A gateway's MQTT
password is derived from the secret key and its key, so the files can be written again from the
database at any time (after `gateway add`, `rotate-key` or `delete`), then `kill -HUP` Mosquitto.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer
from rich.console import Console

from controller.cli import app, console
from controller.cli_admin import _db, _fail

broker_app = typer.Typer(help="The MQTT broker's credentials and ACL (DESIGN §3).", no_args_is_help=True)
app.add_typer(broker_app, name="broker")


def _write(path: Path, text: str) -> None:
    """Write a file readable by its owner only, never world-readable even for an instant."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


@broker_app.command("config")
def broker_config(
    out: Annotated[Path, typer.Option(help="Directory to write password_file, acl_file and citygate.conf into")],
    port: Annotated[int | None, typer.Option(help="The listener's port (default: CITYGATE_BROKER's, else 1883)")]
    = None,
    bind: Annotated[str | None, typer.Option(help="The address the listener binds (default: every interface)")]
    = None,
) -> None:
    """Write a Mosquitto password_file, acl_file and citygate.conf (include them with `include_dir`)."""
    from sqlalchemy import select

    from controller.api.routes.gateways import mqtt_password, password_matches
    from controller.broker_access import CONTROLLER_USER, mosquitto_files
    from controller.models import Gateway
    from controller.settings import get_settings

    settings = get_settings()
    user = settings.broker_user or CONTROLLER_USER
    if not settings.broker_password:
        raise _fail("CITYGATE_BROKER_PASSWORD", f"not set: the controller's broker account ({user}) needs a password",
                    "set CITYGATE_BROKER_PASSWORD (and CITYGATE_BROKER_USER if not citygate-controller) for both "
                    "this command and `citygate serve`, e.g. CITYGATE_BROKER_PASSWORD=$(openssl rand -base64 32)")
    if port is None:
        url = urlparse(settings.broker)
        port = (url.port or 1883) if settings.broker.startswith("mqtt") else 1883
    passwords, skipped = {}, []
    with _db().session() as s:
        for gw in s.scalars(select(Gateway).order_by(Gateway.id)):
            if gw.id == user:
                skipped.append((gw.id, "has the controller's user name"))
            elif not password_matches(settings.secret_key, gw):
                skipped.append((gw.id, "was never given a password with this secret key"))
            else:
                passwords[gw.id] = mqtt_password(settings.secret_key, gw)
    password_text, acl_text = mosquitto_files(user, settings.broker_password, passwords)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    conf = "\n".join([
        "# citygate (DESIGN §3): written by `citygate broker config`; load with `include_dir " + str(out) + "`",
        f"listener {port}" + (f" {bind}" if bind else ""),
        "allow_anonymous false",
        f"password_file {out / 'password_file'}",
        f"acl_file {out / 'acl_file'}",
    ]) + "\n"
    for name, text in (("password_file", password_text), ("acl_file", acl_text), ("citygate.conf", conf)):
        _write(out / name, text)
        console.print(f"wrote {out / name}")
    console.print(f"{len(passwords)} gateways and the controller ({user}); listener {bind or '*'}:{port}, "
                  "anonymous clients refused")
    for gw_id, why in skipped:
        Console(stderr=True).print(f"[yellow]skipped[/] {gw_id}: {why} (give it one: POST "
                                   f"/api/v1/gateways/{gw_id}/rotate-key, then re-flash its bundle)", highlight=False)
    console.print(f"Add `include_dir {out}` to mosquitto.conf (and remove any other listener on port {port}), "
                  "then restart Mosquitto; after gateway changes run this again and `kill -HUP` it.",
                  highlight=False)
