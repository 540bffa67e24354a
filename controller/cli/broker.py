"""`citygate broker config`: the credentials and ACL of DESIGN §3 for an external Mosquitto.

The embedded broker enforces them by itself; Mosquitto reads them from files. A gateway's MQTT
password is derived from the secret key and its key, so the files can be written again from the
database at any time (after `gateway add`, `rotate-key` or `delete`), then `kill -HUP` Mosquitto.
The listener replaces each client id with the username (`use_username_as_clientid`): without it
a gateway could sign in as itself under another gateway's client id, throw that one off and have
its last will ("offline") published. The files belong to the user Mosquitto runs as (controller.brokers.files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer
from rich.console import Console

from controller.cli.base import app, console
from controller.cli.common import _db, _fail

broker_app = typer.Typer(help="The MQTT broker's credentials and ACL (DESIGN §3).", no_args_is_help=True)
app.add_typer(broker_app, name="broker")


@broker_app.command("config")
def broker_config(
    out: Annotated[Path, typer.Option(help="Directory to write password_file, acl_file and citygate.conf into")],
    port: Annotated[int | None, typer.Option(help="The listener's port (default: CITYGATE_BROKER's, else 1883)")]
    = None,
    bind: Annotated[str | None, typer.Option(help="The address the listener binds (default: every interface)")]
    = None,
    owner: Annotated[str | None, typer.Option(help="USER[:GROUP] Mosquitto runs as (its `user` option), who gets "
                                              "the files, mode 0640 (default: mosquitto and its group; "
                                              "another user than yourself needs root)")] = None,
    instance: Annotated[list[str] | None, typer.Option(help="NAME of each `citygate serve --instance NAME` process "
                                                       "on this broker: gets its own account <user>.NAME (set "
                                                       "CITYGATE_BROKER_USER to it), as two processes signed "
                                                       "in under one name throw each other off")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="the listener's TLS certificate (PEM, with its chain): "
                                                  "mqtts:// on --port")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="its private key (readable by Mosquitto's user)")] = None,
) -> None:
    """Write a Mosquitto password_file, acl_file and citygate.conf (include them with `include_dir`)."""
    from sqlalchemy import select

    from controller.brokers import files as broker_files
    from controller.brokers.access import CONTROLLER_USER, controller_accounts, mosquitto_files, watch_password
    from controller.models import Gateway
    from controller.services.gateways import mqtt_password, password_matches
    from controller.settings import get_settings

    settings = get_settings()
    user = settings.broker_user or CONTROLLER_USER
    if not settings.broker_password:
        raise _fail("CITYGATE_BROKER_PASSWORD", f"not set: the controller's broker account ({user}) needs a password",
                    "set CITYGATE_BROKER_PASSWORD (and CITYGATE_BROKER_USER if not citygate-controller) for both "
                    "this command and `citygate serve`, e.g. CITYGATE_BROKER_PASSWORD=$(openssl rand -base64 32)")
    if not user.isprintable() or any(c in user for c in ": #") or len(user) > 60:
        raise _fail("CITYGATE_BROKER_USER", f"{user!r} cannot be a Mosquitto user name here",
                    "use letters, digits, '-', '_' or '.' (at most 60)")
    instances = tuple(dict.fromkeys(instance or ()))
    for name in instances:
        if not (0 < len(name) <= 32 and name.isascii() and all(c.isalnum() or c in "-_" for c in name)) \
                or name in ("cli", "watch"):
            raise _fail("--instance", f"{name!r} cannot name a controller process's broker account",
                        "use 1-32 letters, digits, '-' or '_', not 'cli' nor 'watch'")
    if (tls_cert is None) != (tls_key is None):
        raise _fail("--tls-key" if tls_key is None else "--tls-cert", "TLS needs both --tls-cert and --tls-key")
    for field, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise _fail(field, f"{path} is not a file")
    try:
        owned_by = broker_files.resolve_owner(owner)
        out = broker_files.prepare_dir(out, owned_by)
        broker_files.check_reachable(out, owned_by)
    except broker_files.Refused as e:
        raise _fail(e.field, e.reason, e.hint) from None
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
    password_text, acl_text = mosquitto_files(user, settings.broker_password, passwords,
                                              watch=watch_password(settings.secret_key), instances=instances)
    conf = "\n".join([
        "# citygate (DESIGN §3): written by `citygate broker config`; load with `include_dir " + str(out) + "`",
        f"listener {port}" + (f" {bind}" if bind else ""),
        *([f"certfile {tls_cert.resolve()}", f"keyfile {tls_key.resolve()}"] if tls_cert else []),
        "# Mosquitto 2 applies this to the listener above only (whatever per_listener_settings says), and only",
        "# at start: a client's id becomes its username, so nobody can sign in under another's client id",
        "use_username_as_clientid true",
        "# below: this listener's if per_listener_settings is true, else every listener's",
        "allow_anonymous false",
        f"password_file {out / 'password_file'}",
        f"acl_file {out / 'acl_file'}",
    ]) + "\n"
    for name, text in (("password_file", password_text), ("acl_file", acl_text), ("citygate.conf", conf)):
        broker_files.write(out / name, text, owned_by)
        console.print(f"wrote {out / name}")
    accounts = ", ".join(controller_accounts(user, instances))
    console.print(f"{len(passwords)} gateways and the controller ({accounts}); {'TLS ' if tls_cert else ''}"
                  f"listener {bind or '*'}:{port}, client id = username, anonymous clients refused; files "
                  f"{owned_by} mode 0640", highlight=False)
    console.print(f"read-only watch account: {user}.watch, password {watch_password(settings.secret_key)} "
                  f"(mosquitto_sub -p {port} -u {user}.watch -P ... -v -t 'citygate/v1/#')", highlight=False)
    for gw_id, why in skipped:
        Console(stderr=True).print(f"[yellow]skipped[/] {gw_id}: {why} (give it one: POST "
                                   f"/api/v1/gateways/{gw_id}/rotate-key, then re-flash its bundle)", highlight=False)
    console.print(f"Add `include_dir {out}` to mosquitto.conf (and remove any other listener on port {port}), "
                  f"check its `user` is {owned_by.user}, then restart Mosquitto; after gateway changes run this "
                  "again and `kill -HUP` it.", highlight=False)
