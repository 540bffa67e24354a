"""The `citygate` command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from protocols import routing, tz

app = typer.Typer(help="citygate: edge call routing for city service numbers.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
table_app = typer.Typer(help="Check and sign routing tables.", no_args_is_help=True)
app.add_typer(table_app, name="table")
board_app = typer.Typer(help="Gateway boards: emulate one on this machine.", no_args_is_help=True)
app.add_typer(board_app, name="board")
console = Console()

# (what it shows, gateway, port, caller, local ISO time in Kyiv, busy counts)
SCENARIOS = [
    ("102 from Mariupol", "gw-mariupol-1", "gsm1", "+380671234567", "2016-07-25T14:00", None),
    ("102, Mariupol centre full", "gw-mariupol-1", "gsm1", "+380671234567", "2016-07-25T14:00",
     {"mariupol-102": 3}),
    ("102, every centre full", "gw-kramatorsk-1", "gsm1", "+380501112233", "2016-07-25T14:00",
     {"mariupol-102": 3, "mariupol-reserve": 2}),
    ("102 from Toretsk, day before switch-over", "gw-toretsk-1", "gsm1", "+380624711111", "2016-07-20T23:59", None),
    ("102 from Toretsk, switch-over day", "gw-toretsk-1", "gsm1", "+380624711111", "2016-07-21T00:00", None),
    ("505 info line at 08:30", "gw-sloviansk-1", "fxo1", "+380662223344", "2016-07-25T08:30", None),
    ("505 info line at 12:00", "gw-sloviansk-1", "fxo1", "+380662223344", "2016-07-25T12:00", None),
    ("505 on Independence Day", "gw-sloviansk-1", "fxo1", "+380662223344", "2016-08-24T12:00", None),
    ("old line into occupied Donetsk", "gw-kramatorsk-1", "gsm3", "+380501112233", "2016-07-25T12:00", None),
]


def _local_to_utc(table: routing.Table, local_iso: str) -> int:
    """Local wall time in the table's zone -> UTC seconds (the offset is the zone's at that instant)."""
    naive = int(datetime.fromisoformat(local_iso).replace(tzinfo=UTC).timestamp())
    guess = naive - table.tz.utc_offset(naive)
    return naive - table.tz.utc_offset(guess)


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


@table_app.command("check")
def table_check(path: Annotated[Path, typer.Argument(help="Table body (JSON)", exists=True)]) -> None:
    """Validate a table body; on error print the path of the bad field and why."""
    table = _load_file(path)
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
user_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


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

    from controller.demo import Demo

    d = Demo(data, port, rate, console)
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
def serve() -> None:
    """Run the controller (settings from CITYGATE_* variables or the CITYGATE_CONFIG file) until Ctrl-C."""
    import time

    from controller.service import ControllerService
    from controller.settings import get_settings

    service = ControllerService(get_settings()).start()
    console.print(f"controller up: API {service.url}/api/v1, broker {service.broker_url}; Ctrl-C stops")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        service.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the latest migration."""
    from controller.db import Database
    from controller.settings import get_settings

    db = Database(get_settings().database_url)
    db.upgrade()
    console.print(f"[green]schema up to date[/] ({db.engine.url.render_as_string(hide_password=True)})")


@user_app.command("add")
def user_add(name: Annotated[str, typer.Argument()],
             role: Annotated[str, typer.Option(help="admin | operator | viewer | technician")] = "viewer") -> None:
    """Add a user and print a first API token (shown once)."""
    from controller.auth import create_token, create_user
    from controller.db import Database
    from controller.models import ROLES
    from controller.settings import get_settings

    if role not in ROLES:
        console.print(f"[red]--role must be one of {', '.join(ROLES)}[/]")
        raise typer.Exit(2)
    db = Database(get_settings().database_url)
    db.upgrade()
    with db.session() as s:
        user = create_user(s, name, role)
        token = create_token(s, user, "first")
    console.print(f"user [bold]{name}[/] ({role}); token (shown once): {token}")


@token_app.command("create")
def token_create(name: Annotated[str, typer.Argument(help="User name")],
                 label: Annotated[str, typer.Option()] = "") -> None:
    """Create another API token for a user (shown once)."""
    from sqlalchemy import select

    from controller.auth import create_token
    from controller.db import Database
    from controller.models import User
    from controller.settings import get_settings

    db = Database(get_settings().database_url)
    with db.session() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            console.print(f"[red]no user {name!r}[/]: add one with `citygate user add {name} --role ...`")
            raise typer.Exit(2)
        console.print(create_token(s, user, label))


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
                                                "bundle`): id, key, broker, password, profile; options override it",
                                                exists=True, dir_okay=False)] = None,
) -> None:
    """Run the real firmware on the MicroPython unix port with emulated modems and flash, until Ctrl-C."""
    import time

    from hil_tests.rig.emulated import EmulatedRig

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
    if missing:
        console.print(f"[red]{', '.join(missing)} needed (or --bundle config.json)[/]")
        raise typer.Exit(2)
    if len(key) != 64:
        console.print("[red]--key must be 64 hex digits (the gateway's 32-byte key)[/]")
        raise typer.Exit(2)
    rig = EmulatedRig(gateway, key, broker, profile=profile, workdir=workdir, password=password,
                      user=cfg.get("user"))
    console.print(f"[bold]{gateway}[/]: profile {profile}, flash in {rig.workdir}, broker {broker}; Ctrl-C stops")
    shown = 0
    try:
        rig.power_on()
        while True:
            lines = rig.console().splitlines()
            for line in lines[shown:]:
                console.print(line, markup=False, highlight=False)
            shown = len(lines)
            time.sleep(0.2)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        rig.close()


from controller import cli_admin, cli_broker  # noqa: E402,F401  (register gateway / route / rollout / report / broker)

if __name__ == "__main__":
    app()
