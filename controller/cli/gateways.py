"""`citygate gateway`: register gateways, read their state, write their flash bundle (controller.services.gateways,
on the database of the settings; no server needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from controller.cli.base import app, console
from controller.cli.common import _actor, _db, _domain_error, _fail, _opt, _when
from controller.cli.output import CSV_OPTION, JSON_OPTION, Col, emit

gateway_app = typer.Typer(help="The fleet: register gateways, read their state, write their flash bundle.",
                          no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")


def _ports_map(ports: list[str]) -> dict[str, str]:
    out = {}
    for item in ports:
        port, sep, number = item.partition("=")
        if not sep or not port or not number:
            raise _fail("--port", f"{item!r} is not PORT=SERVICE",
                        "e.g. --port gsm1=102 (inbound port gsm1 serves 102)")
        out[port] = number
    return out


def _write_secret_file(path: Path, text: str) -> None:
    """Write a file only its owner reads (it holds a gateway's secrets)."""
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
    except OSError as e:
        raise _fail("--bundle", f"cannot write {path}: {e.strerror or e}") from None


@gateway_app.command("add")
def gateway_add(
    gateway_id: Annotated[str, typer.Argument(metavar="ID", help="Gateway id, [a-z0-9-]{3,32}")],
    city: Annotated[str, typer.Option(help="The city's name")],
    profile: Annotated[str, typer.Option(help="Board profile")] = "esp32-2gsm",
    port: Annotated[list[str] | None, typer.Option("--port", help="PORT=SERVICE: an inbound port and the number "
                                                   "it serves, e.g. gsm1=102 (repeat)")] = None,
    out: Annotated[list[str] | None, typer.Option("--out", help="A port it dials centres on (repeat)")] = None,
    bundle: Annotated[Path | None, typer.Option(help="Also write the board's whole config.json (with its key and "
                                                "password, mode 0600) to this file, for `board emulate --bundle` "
                                                "or flashing")] = None,
    broker: Annotated[str | None, typer.Option(help="With --bundle: mqtt://host:port as the board reaches the "
                                               "broker (default: CITYGATE_BROKER)")] = None,
) -> None:
    """Register a gateway and compile its table; prints its key and MQTT password once."""
    from types import SimpleNamespace

    from controller.services import gateways
    from controller.services.errors import DomainError
    from controller.settings import get_settings

    settings = get_settings()
    values = {"city": city, "profile": profile, "services": _ports_map(port or []), "out_ports": list(out or [])}
    try:
        if bundle is not None:  # the broker's address must be known before anything is registered
            config = gateways.bundle_config(SimpleNamespace(id=gateway_id, profile=profile), settings, None, broker)
        with _db().session() as s:
            made = gateways.register(s, gateway_id, values, settings.secret_key, actor=_actor())
            shown = SimpleNamespace(**gateways.describe(made.gateway))
    except DomainError as e:
        raise _domain_error(e) from None
    if bundle is not None:
        _write_secret_file(bundle, json.dumps(config | {"key": made.key, "password": made.password}, indent=2))
        console.print(f"bundle written to {bundle} (mode 0600: it holds the key and password)")
    _print_gateway(shown)
    t = RichTable(title="secrets (shown only now, and written to the secret audit; the board's config.json is "
                        "`citygate gateway bundle ID` plus these two)")
    t.add_column("what")
    t.add_column("value")
    t.add_row("key", made.key)
    t.add_row("MQTT user", gateway_id)
    t.add_row("MQTT password", made.password)
    console.print(t)


@gateway_app.command("list")
def gateway_list(city: Annotated[str | None, typer.Option(help="Only this city's gateways")] = None,
                 online: Annotated[bool | None, typer.Option("--online/--offline", help="Only online / offline")]
                 = None, as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every gateway: online, last seen, compiled / desired / applied table versions, outbox."""
    from controller.services import gateways

    with _db().session() as s:
        rows = [gateways.describe(gw) for gw in gateways.find_gateways(s, city, online)]
    for r in rows:
        r["last_seen_utc"] = _when(r["last_seen"])
    cols = [Col("id", ident=True), Col("city"), Col("online", show=lambda v: "[green]yes[/]" if v else "[red]no[/]"),
            Col("last_seen_utc", "last seen"), Col("compiled_version", "compiled", right=True),
            Col("desired_version", "desired", right=True), Col("applied_version", "applied", right=True),
            Col("in_sync", "in sync", show=lambda v: "yes" if v else "[yellow]no[/]"), Col("outbox", right=True)]
    emit(console, rows, cols, f"gateways ({len(rows)})", as_csv, as_json)


def _print_gateway(g) -> None:
    t = RichTable(title=f"gateway {g.id}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for name, value in (("city", g.city), ("profile", g.profile), ("online", "yes" if g.online else "no"),
                        ("last seen", _when(g.last_seen)), ("compiled version", _opt(g.compiled_version)),
                        ("desired version", _opt(g.desired_version)), ("applied version", _opt(g.applied_version)),
                        ("in sync", "yes" if g.in_sync else "no"), ("last reject", _opt(g.last_reject)),
                        ("outbox", _opt(g.outbox)), ("firmware", _opt(g.fw)), ("uptime s", _opt(g.uptime_s)),
                        ("heap free / min", f"{_opt(g.heap_free)} / {_opt(g.heap_min_free)}")):
        t.add_row(name, value)
    console.print(t)
    p = RichTable(title="ports")
    for col in ("port", "serves", "dials out", "signal (csq)"):
        p.add_column(col)
    for port in g.ports:
        p.add_row(port["name"], _opt(port.get("service")), "yes" if port.get("out") else "", _opt(port.get("csq")))
    console.print(p)


@gateway_app.command("show")
def gateway_show(gateway_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JSON_OPTION = False) -> None:
    """One gateway: its state, versions and ports."""
    from types import SimpleNamespace

    from controller.services import gateways
    from controller.services.errors import DomainError

    try:
        with _db().session() as s:
            g = gateways.describe(gateways.load(s, gateway_id))
    except DomainError as e:
        raise _domain_error(e) from None
    if as_json:
        typer.echo(json.dumps(g, indent=1))
        return
    _print_gateway(SimpleNamespace(**g))


@gateway_app.command("bundle")
def gateway_bundle(gateway_id: Annotated[str, typer.Argument(metavar="ID")],
                   broker: Annotated[str | None, typer.Option(help="mqtt://host:port as the board reaches it "
                                                              "(default: from the settings)")] = None,
                   rotate: Annotated[bool, typer.Option("--rotate", help="Rotate the gateway's key and MQTT "
                                                        "password and include them (shown once, audited; the "
                                                        "board's old ones stop working)")] = False) -> None:
    """Print the device config for the board's flash (config.json): id, broker, user, profile; with --rotate
    also a new key and password (the only way to see them again after registration)."""
    from controller.services import gateways
    from controller.services.errors import DomainError
    from controller.settings import get_settings

    settings = get_settings()
    try:
        with _db().session() as s:
            gw = gateways.load(s, gateway_id)
            config = gateways.bundle_config(gw, settings, None, broker)
            if rotate:
                made = gateways.rotate(s, gw, settings.secret_key, actor=_actor(), action="bundle")
                config |= {"key": made.key, "password": made.password}
    except DomainError as e:
        raise _domain_error(e) from None
    typer.echo(json.dumps(config, indent=2))
    if not rotate:
        Console(stderr=True).print("no secrets in it: `--rotate` issues a new key and password (the board's "
                                   "current ones stop working), or add the ones shown at registration", highlight=False)
