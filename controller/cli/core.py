"""The `citygate` command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from controller.cli.base import app, console
from protocols import routing, tz

table_app = typer.Typer(help="Check and sign routing tables.", no_args_is_help=True)
app.add_typer(table_app, name="table")
board_app = typer.Typer(help="Gateway boards: emulate one on this machine.", no_args_is_help=True)
app.add_typer(board_app, name="board")

# (what it shows, gateway, port, caller, local ISO time in Kyiv, busy counts)
SCENARIOS = [
    ("102 from Mariupol", "gw-mariupol-1", "gsm1", "+380671234567", "2016-07-25T14:00", None),
    ("102, Mariupol centre full", "gw-mariupol-1", "gsm1", "+380671234567", "2016-07-25T14:00",
     {"mariupol-102": 3}),
    ("102, every centre full", "gw-kramatorsk-1", "gsm1", "+380501112233", "2016-07-25T14:00",
     {"mariupol-102": 3, "mariupol-reserve": 2}),
    ("102 from Toretsk, day before switch-over", "gw-toretsk-1", "gsm1", "+380624711111", "2016-07-20T23:59", None),
    ("102 from Toretsk, switch-over day", "gw-toretsk-1", "gsm1", "+380624711111", "2016-07-21T00:00", None),
    ("505 info line at 08:30", "gw-sloviansk-1", "gsm3", "+380662223344", "2016-07-25T08:30", None),
    ("505 info line at 12:00", "gw-sloviansk-1", "gsm3", "+380662223344", "2016-07-25T12:00", None),
    ("505 on Independence Day", "gw-sloviansk-1", "gsm3", "+380662223344", "2016-08-24T12:00", None),
    ("old line into occupied Donetsk", "gw-kramatorsk-1", "gsm4", "+380501112233", "2016-07-25T12:00", None),
]


def _local_to_utc(table: routing.Table, local_iso: str) -> int:
    """Local wall time in the table's zone -> UTC seconds (the offset is the zone's at that instant)."""
    naive = int(datetime.fromisoformat(local_iso).replace(tzinfo=UTC).timestamp())
    return tz.utc_from_local(naive, table.tz)


def _row(t: RichTable, what: str, table: routing.Table, port: str, caller: str, now: int, busy) -> None:
    d = routing.decide(table, port, caller, now, busy=busy)
    lt = tz.localtime(now, table.tz)
    style = {"dial": "green", "forward": "cyan", "callback": "yellow", "reject": "red"}[d.action]
    decision = f"[{style}]{d.action}[/] " + " → ".join(d.targets)
    t.add_row(what, f"{table.gateway}\n{port} ← {caller}", "%s %02d:%02d" % (tz.date_str(lt), lt[3], lt[4]),
              decision, f"{d.reason}\n[dim]{d.route or 'no route'}[/]")


@app.command()
def preview(
    gateway: Annotated[str | None, typer.Option(help="Reference gateway id, e.g. gw-toretsk-1")] = None,
    port: Annotated[str, typer.Option(help="Inbound port")] = "gsm1",
    caller: Annotated[str, typer.Option(help="Caller number")] = "+380671234567",
    at: Annotated[str | None, typer.Option(help="Local time YYYY-MM-DDTHH:MM in the gateway's zone")] = None,
    table_file: Annotated[Path | None, typer.Option("--table", help="A table body (JSON) instead of the reference")]
    = None,
) -> None:
    """Show what a gateway decides for a call, from the shared routing code.

    Without options, runs the reference deployment (DESIGN §9) through its
    telling moments: centre full, Toretsk's switch-over, the 505 line's hours,
    a holiday, a number in occupied territory.
    """
    from controller import reference

    t = RichTable(title="citygate routing preview (reference deployment, Donetsk region police 102)")
    for col in ("scenario", "gateway, port ← caller", "local time", "decision", "reason, route"):
        t.add_column(col)
    if table_file or gateway or at:
        table = _load_file(table_file) if table_file else routing.load(reference.table(gateway or "gw-mariupol-1"))
        now = _local_to_utc(table, at) if at else int(datetime.now(UTC).timestamp())
        _row(t, "your call", table, port, caller, now, None)
    else:
        tables = {gw: routing.load(reference.table(gw)) for gw in reference.CITIES}
        for what, gw, p, c, local, busy in SCENARIOS:
            table = tables[gw]
            _row(t, what, table, p, c, _local_to_utc(table, local), busy)
    console.print(t)


def _load_file(path: Path) -> routing.Table:
    try:
        return routing.load(path.read_bytes())
    except routing.TableError as e:
        console.print(f"[red]{path}: invalid table[/]: [bold]{e.path}[/]: {e.reason}")
        raise typer.Exit(2) from None


def ports_outside_profile(table: routing.Table, profile: str) -> list[tuple[str, str]]:
    """(path, reason) for every route port and target `via` port the board of `profile` does not have."""
    from firmware.gw import profiles

    have = set(profiles.get(profile)["ports"])
    why = f"is not a port of a {profile} board (it has {', '.join(sorted(have))})"
    found = [(f"routes[{i}].port", why) for i, r in enumerate(table.routes) if r.port != "*" and r.port not in have]
    for tid, t in table.targets.items():
        found += [(f"targets.{tid}.via[{j}]", why) for j, p in enumerate(t.via) if p not in have]
    return found


@table_app.command("check")
def table_check(
    path: Annotated[Path, typer.Argument(help="Table body (JSON)", exists=True)],
    profile: Annotated[str | None, typer.Option(
        help="The board profile the table is for (default: the reference gateway's, when it is one)")] = None,
) -> None:
    """Validate a table body; on error print the path of the bad field and why."""
    from controller import reference
    from firmware.gw import profiles

    table = _load_file(path)
    if profile is None and table.gateway in reference.CITIES:
        profile = reference.PROFILE
    if profile is not None:
        if profile not in profiles.PROFILES:
            console.print(f"[red]--profile {profile}: unknown; known: {', '.join(sorted(profiles.PROFILES))}[/]")
            raise typer.Exit(2)
        wrong = ports_outside_profile(table, profile)
        for where, why in wrong:
            console.print(f"[red]{path}: invalid for this board[/]: [bold]{where}[/]: {why}")
        if wrong:
            raise typer.Exit(2)
    console.print(f"[green]ok[/]: {table.gateway} version {table.version}, {len(table.routes)} routes, "
                  f"{len(table.targets)} targets, {len(table.deny)} deny prefixes, sha256 {table.sha256}")


@table_app.command("seal")
def table_seal(
    path: Annotated[Path, typer.Argument(help="Table body (JSON)", exists=True)],
    key: Annotated[str, typer.Option(help="The gateway's key, 64 hex digits", envvar="CITYGATE_GATEWAY_KEY")],
) -> None:
    """Validate a body and print its signed MQTT envelope."""
    _load_file(path)
    typer.echo(routing.seal(path.read_bytes(), key).decode())


@table_app.command("reference")
def table_reference(gateway: Annotated[str, typer.Argument(help="Reference gateway id")] = "gw-toretsk-1") -> None:
    """Print the reference deployment's table body for one gateway."""
    from controller import reference

    typer.echo(json.dumps(reference.table(gateway), indent=2))


db_app = typer.Typer(help="The controller's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def demo(
    data: Annotated[Path | None, typer.Option(help="Keep the database and board flashes here (default: temporary)")]
    = None,
    port: Annotated[int, typer.Option(help="HTTP port (a free one if taken)")] = 8000,
    rate: Annotated[float, typer.Option(help="Calls a minute per city")] = 6.0,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C)")] = 0,
) -> None:
    """The whole system on this machine: broker, controller, one emulated board per city, traffic."""
    import time

    from controller.demo import Demo, DemoBusy

    try:
        d = Demo(data, port, rate, console)
    except DemoBusy as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    try:
        d.start()
        t0 = time.monotonic()
        while not duration or time.monotonic() - t0 < duration:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        d.stop()
        console.print("demo stopped: every board, the broker and the API are down")


@app.command()
def serve(
    role: Annotated[str, typer.Option(help="all | api (HTTP, no ingest) | ingest (no HTTP); several processes "
                                           "share the ingest through an external broker")] = "all",
    instance: Annotated[str, typer.Option(help="this process's name, distinct per process (MQTT client id "
                                               "citygate-NAME)")] = "controller",
) -> None:
    """Run the controller (settings from CITYGATE_* variables or the CITYGATE_CONFIG file) until Ctrl-C."""
    import time

    from controller.service import ROLES, ControllerService
    from controller.settings import get_settings

    if role not in ROLES:
        console.print(f"[red]--role must be one of {', '.join(ROLES)}[/]")
        raise typer.Exit(2)
    try:
        service = ControllerService(get_settings(), role=role, instance=instance)
    except ValueError as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    try:  # Ctrl-C while it starts (its API may already answer) stops what has started, as later
        service.start()
        api = f"API {service.url}/api/v1" if service.server else "no API"
        console.print(f"controller up ({role}, {instance}): {api}, broker {service.broker_url}; Ctrl-C stops")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        service.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the latest migration."""
    from controller.cli.common import _db

    db = _db(create=True)
    console.print(f"[green]schema up to date[/] ({db.engine.url.render_as_string(hide_password=True)})")


@board_app.command("emulate")
def board_emulate(
    gateway: Annotated[str | None, typer.Option(help="Gateway id, [a-z0-9-]{3,32}")] = None,
    key: Annotated[str | None, typer.Option(help="The gateway's 32-byte key, 64 hex digits",
                                            envvar="CITYGATE_GATEWAY_KEY")] = None,
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port of the controller's broker")] = None,
    profile: Annotated[str | None, typer.Option(help="Board profile (default: the bundle's, else esp32-2gsm)")]
    = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep flash and board files here (default: temporary)")]
    = None,
    password: Annotated[str | None, typer.Option(help="MQTT password", envvar="CITYGATE_GATEWAY_PASSWORD")] = None,
    bundle: Annotated[Path | None, typer.Option(help="The gateway's bundle (config.json from `citygate gateway "
                                                "bundle`): id, key, broker, password, profile, broker_ca; options win",
                                                exists=True, dir_okay=False)] = None,
    relay: Annotated[bool, typer.Option("--relay", help="Power the board through a Modbus TCP relay on a free "
                                        "loopback port: coil 0 off cuts the power, on boots")] = False,
    blank: Annotated[bool, typer.Option("--blank", help="A board with MicroPython and its flash only: it boots "
                                        "to the REPL until `citygate flash` puts the firmware and a bundle on it "
                                        "(give --workdir to keep its flash from one run to the next)")] = False,
) -> None:
    """Run the real firmware on the MicroPython unix port with emulated modems and flash, until Ctrl-C.

    Its serial console is the pty printed as `console: /dev/pts/N` (`citygate console --port`, mpremote)."""
    import time

    from emulator.board import EmulatedRig

    cfg = {}
    if bundle is not None:
        try:
            cfg = json.loads(bundle.read_text())
        except ValueError as e:
            cfg = f"not JSON ({e})"
        if not isinstance(cfg, dict):
            console.print(f"[red]--bundle {bundle}: {cfg if isinstance(cfg, str) else 'not a JSON object'}[/]")
            raise typer.Exit(2)
    gateway, key, broker = gateway or cfg.get("id"), key or cfg.get("key"), broker or cfg.get("broker")
    password, profile = password or cfg.get("password"), profile or cfg.get("profile") or "esp32-2gsm"
    missing = [name for name, v in (("--gateway", gateway), ("--key", key), ("--broker", broker)) if not v]
    if blank:
        gateway, key, broker, missing = gateway or "blank", "", "", []
    if missing:
        hint = (" (a bundle holds the key and password only as `citygate gateway bundle ID --rotate` printed it)"
                if bundle is not None and not key else "")
        console.print(f"[red]{', '.join(missing)} needed (or --bundle config.json){hint}[/]")
        raise typer.Exit(2)
    if len(key) != 64 and not blank:
        console.print("[red]--key must be 64 hex digits (the gateway's 32-byte key)[/]")
        raise typer.Exit(2)
    rig = EmulatedRig(gateway, key, broker, profile=profile, workdir=workdir, password=password,
                      user=cfg.get("user"), relay=relay, blank=blank, broker_ca=cfg.get("broker_ca"))
    console.print(f"[bold]{gateway}[/]: profile {profile}, flash in {rig.workdir}, broker {broker}; Ctrl-C stops")
    console.print(f"console: {rig.console_path}", markup=False, highlight=False)
    if rig.relay_url:
        console.print(f"power relay: {rig.relay_url} coil 0", markup=False, highlight=False)
    shown = 0
    try:
        rig.power_on()
        while True:
            lines = rig.console().splitlines()
            for line in lines[shown:]:
                console.print(line, markup=False, highlight=False)
            shown = len(lines)
            if rig.died is not None:
                console.print(f"[red]the firmware stopped (exit code {rig.died}); its last lines are above[/]")
                raise typer.Exit(1)
            time.sleep(0.2)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        rig.close()



if __name__ == "__main__":
    app()
