"""`citygate gateway | route | rollout | report`: administration from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table as RichTable

from controller.cli import app, console

# ---------------------------------------------------------------- admin: gateways, routes, rollouts, reports
# The same functions the API's routes run, on the database of the settings (no server needed, except for
# `rollout start`, which publishes through the controller's broker).

gateway_app = typer.Typer(help="The fleet: register gateways, read their state, write their flash bundle.",
                          no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
route_app = typer.Typer(help="How a city's calls to a service are routed.", no_args_is_help=True)
app.add_typer(route_app, name="route")
rollout_app = typer.Typer(help="Publish compiled tables, canary gateways first.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")
report_app = typer.Typer(help="Reports on what the gateways recorded.", no_args_is_help=True)
app.add_typer(report_app, name="report")


def _db():
    """The settings' database, its schema brought up to date."""
    from controller.db import Database
    from controller.settings import get_settings

    db = Database(get_settings().database_url)
    db.upgrade()
    return db


def _fail(field: str | None, reason: str, hint: str = "") -> typer.Exit:
    """Print what is wrong (and how to fix it) on stderr; the caller raises the returned Exit(2)."""
    text = f"[red]error[/]: [bold]{field or 'request'}[/]: {reason}" + (f"\n{hint}" if hint else "")
    Console(stderr=True).print(text, highlight=False)
    return typer.Exit(2)


def _api_error(e) -> typer.Exit:
    d = e.detail[0] if isinstance(e.detail, list) and e.detail else {"field": None, "reason": str(e.detail)}
    return _fail(d["field"], d["reason"])


def _validation_error(resource: str, e) -> typer.Exit:
    err = e.errors()[0]
    path = resource
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return _fail(path, err["msg"].removeprefix("Value error, "))


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts is not None else "never"


def _opt(v) -> str:
    return "-" if v is None else str(v)


def _ports_map(ports: list[str]) -> dict[str, str]:
    out = {}
    for item in ports:
        port, sep, number = item.partition("=")
        if not sep or not port or not number:
            raise _fail("--port", f"{item!r} is not PORT=SERVICE",
                        "e.g. --port gsm1=102 (inbound port gsm1 serves 102)")
        out[port] = number
    return out


@gateway_app.command("add")
def gateway_add(
    gateway_id: Annotated[str, typer.Argument(metavar="ID", help="Gateway id, [a-z0-9-]{3,32}")],
    city: Annotated[str, typer.Option(help="The city's name")],
    profile: Annotated[str, typer.Option(help="Board profile")] = "esp32-2gsm",
    port: Annotated[list[str] | None, typer.Option("--port", help="PORT=SERVICE: an inbound port and the number "
                                                   "it serves, e.g. gsm1=102 (repeat)")] = None,
    out: Annotated[list[str] | None, typer.Option("--out", help="A port it dials centres on (repeat)")] = None,
) -> None:
    """Register a gateway and compile its table; prints its key and MQTT password once."""
    from pydantic import ValidationError

    from controller.api.deps import ApiError
    from controller.api.routes.gateways import GatewayIn, register
    from controller.settings import get_settings

    try:
        body = GatewayIn(id=gateway_id, city=city, profile=profile, services=_ports_map(port or []),
                         out_ports=list(out or []))
    except ValidationError as e:
        raise _validation_error("gateways", e) from None
    try:
        with _db().session() as s:
            made = register(s, body, get_settings().secret_key)
    except ApiError as e:
        raise _api_error(e) from None
    _print_gateway(made.gateway)
    t = RichTable(title="secrets (shown only now: write them to the board with `citygate gateway bundle`)")
    t.add_column("what")
    t.add_column("value")
    t.add_row("key", made.key)
    t.add_row("MQTT user", made.user)
    t.add_row("MQTT password", made.password)
    console.print(t)


@gateway_app.command("list")
def gateway_list(city: Annotated[str | None, typer.Option(help="Only this city's gateways")] = None,
                 online: Annotated[bool | None, typer.Option("--online/--offline", help="Only online / offline")]
                 = None) -> None:
    """Every gateway: online, last seen, compiled / desired / applied table versions, outbox."""
    from controller.api.routes.gateways import find_gateways, view

    with _db().session() as s:
        rows = [view(gw) for gw in find_gateways(s, city, online)]
    t = RichTable(title=f"gateways ({len(rows)})")
    for col in ("id", "city", "online", "last seen", "compiled", "desired", "applied", "outbox"):
        t.add_column(col)
    for g in rows:
        t.add_row(g.id, g.city, "[green]yes[/]" if g.online else "[red]no[/]", _when(g.last_seen),
                  _opt(g.compiled_version), _opt(g.desired_version),
                  (f"[green]{g.applied_version}[/]" if g.in_sync else _opt(g.applied_version)), _opt(g.outbox))
    console.print(t)


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
def gateway_show(gateway_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """One gateway: its state, versions and ports."""
    from controller.api.deps import ApiError
    from controller.api.routes.gateways import load, view

    try:
        with _db().session() as s:
            g = view(load(s, gateway_id))
    except ApiError as e:
        raise _api_error(e) from None
    _print_gateway(g)


@gateway_app.command("bundle")
def gateway_bundle(gateway_id: Annotated[str, typer.Argument(metavar="ID")],
                   broker: Annotated[str | None, typer.Option(help="mqtt://host:port as the board reaches it "
                                                              "(default: from the settings)")] = None) -> None:
    """Print the device config for the board's flash (config.json): id, key, broker, user, password, profile."""
    from controller.api.deps import ApiError
    from controller.api.routes.gateways import bundle_config, load
    from controller.settings import get_settings

    try:
        with _db().session() as s:
            config = bundle_config(load(s, gateway_id), get_settings(), None, broker)
    except ApiError as e:
        raise _api_error(e) from None
    typer.echo(json.dumps(config, indent=2))


def _action(value: str | None, option: str) -> dict | None:
    """callback | reject | forward:CENTRE -> a table action."""
    if value is None:
        return None
    action, sep, target = value.partition(":")
    if not action or (sep and not target):
        raise _fail(option, f"{value!r} is not an action", "use callback, reject or forward:CENTRE")
    return {"action": action, "target": target} if sep else {"action": action}


def _hours(values: list[str]) -> list[dict] | None:
    out = []
    for i, v in enumerate(values):
        parts = v.split(",")
        if len(parts) != 3:
            raise _fail(f"--hours[{i}]", f"{v!r} is not DAYS,START,END", "e.g. --hours 12345,08:00,18:00 "
                        "(days 1 = Monday ... 7 = Sunday)")
        out.append({"days": parts[0], "start": parts[1], "end": parts[2]})
    return out or None


def _print_routes(rows) -> None:
    t = RichTable(title=f"routes ({len(rows)})")
    for col in ("id", "city", "service", "name", "targets", "hours", "fallback", "after hours", "from", "until"):
        t.add_column(col)

    def act(a):
        return "-" if not a else a["action"] + (f":{a['target']}" if a.get("target") else "")

    for r in rows:
        hours = "always" if not r.hours else "; ".join(f"{h.get('days')} {h.get('start')}-{h.get('end')}"
                                                       for h in r.hours)
        t.add_row(str(r.id), r.city.name, r.service.number, r.name, " → ".join(r.targets), hours, act(r.fallback),
                  act(r.after_hours), _when(r.valid_from) if r.valid_from else "-",
                  _when(r.valid_until) if r.valid_until else "-")
    console.print(t)


@route_app.command("list")
def route_list(city: Annotated[str | None, typer.Option(help="Only this city's routes")] = None) -> None:
    """Every route (schedules: several rows with from/until)."""
    from sqlalchemy import select

    from controller.models import City, Route

    with _db().session() as s:
        q = select(Route).join(City).order_by(City.name, Route.service_id, Route.valid_from, Route.id)
        if city is not None:
            if s.scalars(select(City).where(City.name == city)).first() is None:
                raise _fail("--city", f"no city {city!r}")
            q = q.where(City.name == city)
        _print_routes(list(s.scalars(q)))


@route_app.command("add")
def route_add(
    city: Annotated[str, typer.Option(help="The city's name")],
    service: Annotated[str, typer.Option(help="The service number, e.g. 102")],
    name: Annotated[str, typer.Option(help="The route id in tables")],
    target: Annotated[list[str] | None, typer.Option("--target", help="A centre code, in dialling order (repeat)")]
    = None,
    hours: Annotated[list[str] | None, typer.Option(help="DAYS,START,END e.g. 1234567,09:00,19:00 (repeat); "
                                                    "none = always open")] = None,
    fallback: Annotated[str | None, typer.Option(help="When no centre answers: callback | reject | forward:CENTRE")]
    = None,
    after_hours: Annotated[str | None, typer.Option(help="Outside the hours: callback | reject | forward:CENTRE")]
    = None,
    caller: Annotated[list[str] | None, typer.Option(help="Only callers with this prefix (repeat)")] = None,
    strategy: Annotated[str, typer.Option(help="sequential | round_robin")] = "sequential",
    valid_from: Annotated[str | None, typer.Option("--from", help="ISO time (UTC unless an offset is given)")] = None,
    valid_until: Annotated[str | None, typer.Option("--until", help="ISO time, exclusive")] = None,
) -> None:
    """Add a route and recompile the gateways it reaches; a route that would make an invalid table is refused."""
    from pydantic import ValidationError
    from sqlalchemy import select

    from controller.api.deps import ApiError
    from controller.api.routes.call_routes import RouteIn, create_route, reached
    from controller.api.routes.common import parse_time
    from controller.compiler import latest_table
    from controller.models import City, Service

    try:
        with _db().session() as s:
            c = s.scalars(select(City).where(City.name == city)).first()
            if c is None:
                raise _fail("--city", f"no city {city!r}", "see the cities in `citygate route list`")
            svc = s.scalars(select(Service).where(Service.number == service)).first()
            if svc is None:
                raise _fail("--service", f"no service with number {service!r}")
            try:
                body = RouteIn(city_id=c.id, service_id=svc.id, name=name, targets=list(target or []),
                               strategy=strategy, hours=_hours(hours or []), caller=list(caller or []),
                               fallback=_action(fallback, "--fallback"),
                               after_hours=_action(after_hours, "--after-hours"),
                               valid_from=parse_time(valid_from, "--from"),
                               valid_until=parse_time(valid_until, "--until"))
            except ValidationError as e:
                raise _validation_error("routes", e) from None
            route = create_route(s, body)
            _print_routes([route])
            compiled = [(gw.id, latest_table(s, gw.id)) for gw in reached(s, {c.id}, {svc.id})]
    except ApiError as e:
        raise _api_error(e) from None
    t = RichTable(title="gateways recompiled")
    t.add_column("gateway")
    t.add_column("compiled version")
    for gid, tv in compiled:
        t.add_row(gid, _opt(tv.version if tv else None))
    console.print(t)
    if compiled:
        console.print("publish with `citygate rollout start` (the running controller must use an external broker)")


def _rollout_tables(view) -> None:
    t = RichTable(title=f"rollout {view.id}: {view.status}" + (f" ({view.reason})" if view.reason else ""))
    for col in ("gateway", "stage", "version", "status", "online", "applied", "reason", "updated"):
        t.add_column(col)
    style = {"applied": "green", "rejected": "red", "offline": "yellow", "pending": "cyan"}
    for x in view.targets:
        t.add_row(x.gateway, x.stage, str(x.version), f"[{style.get(x.status, 'white')}]{x.status}[/]",
                  {True: "yes", False: "no"}.get(x.online, "-"), _opt(x.applied_version), _opt(x.reason),
                  _when(x.updated_at))
    console.print(t)
    console.print(", ".join(f"{k} {v}" for k, v in view.counts.items()))


@rollout_app.command("status")
def rollout_status(rollout_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="Default: the latest")]
                   = None) -> None:
    """A rollout's targets and their status (without ID: recent rollouts, then the latest one's targets)."""
    from sqlalchemy import select

    from controller.api.routes.rollouts import view
    from controller.models import Rollout

    with _db().session() as s:
        if rollout_id is None:
            recent = list(s.scalars(select(Rollout).order_by(Rollout.id.desc()).limit(10)))
            if not recent:
                raise _fail("ID", "no rollout yet", "start one with `citygate rollout start`")
            views = [view(s, r) for r in recent]
            t = RichTable(title="recent rollouts")
            for col in ("id", "created", "status", "canary", "pending", "applied", "rejected", "offline", "reason"):
                t.add_column(col)
            for v in views:
                t.add_row(str(v.id), _when(v.created_at), v.status, ", ".join(v.canary) or "-",
                          *(str(v.counts[k]) for k in ("pending", "applied", "rejected", "offline")), _opt(v.reason))
            console.print(t)
            current = views[0]
        else:
            r = s.get(Rollout, rollout_id)
            if r is None:
                raise _fail("ID", f"no rollout {rollout_id}", "list them with `citygate rollout status`")
            current = view(s, r)
    _rollout_tables(current)


def _connect_bridge(db, broker: str | None, user: str | None, password: str | None):
    """A Bridge connected to the controller's broker, or exit 2 saying what must run."""
    import socket

    from controller.bridge import Bridge, broker_endpoint
    from controller.settings import get_settings

    need = ("`citygate serve` must be running with an external broker (CITYGATE_BROKER=mqtt://host:port, "
            "e.g. Mosquitto) so this command can publish through it; pass that URL as --broker")
    if not broker or not broker.startswith(("mqtt://", "mqtts://")):
        raise _fail("--broker", f"the broker is {broker or 'not set'!r}: an embedded broker lives inside one "
                    "`citygate serve` process and cannot be reached from here", need)
    host, port, *_ = broker_endpoint(broker)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        raise _fail("--broker", f"cannot reach {host}:{port} ({e.strerror or e})", need) from None
    bridge = Bridge(db, broker, user, password, client_id="citygate-cli", ca_file=get_settings().broker_ca)
    bridge.start()
    if not bridge.connected.is_set():
        bridge.stop()
        raise _fail("--broker", f"the broker at {host}:{port} did not accept the connection "
                    "(check --user / --password, CITYGATE_BROKER_USER / _PASSWORD)", need)
    return bridge


@rollout_app.command("start")
def rollout_start(
    gateway: Annotated[list[str] | None, typer.Option("--gateway", help="A gateway to roll out to (repeat; "
                                                      "default: every gateway)")] = None,
    canary: Annotated[list[str] | None, typer.Option("--canary", help="Published first; the rest once these "
                                                     "applied (repeat)")] = None,
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port of the controller's broker "
                                               "(default: CITYGATE_BROKER)")] = None,
    user: Annotated[str | None, typer.Option(help="MQTT user (default: CITYGATE_BROKER_USER, else "
                                             "citygate-controller when a password is given)")] = None,
    password: Annotated[str | None, typer.Option(help="MQTT password (default: CITYGATE_BROKER_PASSWORD)")] = None,
) -> None:
    """Compile the gateways' tables and publish them through the controller's broker, canaries first.

    The running controller (`citygate serve`) sees the acks and publishes the rest once every canary applied.
    """
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn

    from controller.api.deps import ApiError
    from controller.api.routes.rollouts import begin, view
    from controller.broker_access import CONTROLLER_USER
    from controller.settings import get_settings

    settings = get_settings()
    db = _db()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True),
                  transient=True) as progress:
        task = progress.add_task(f"connecting to {broker or settings.broker}")
        password = password or settings.broker_password
        user = user or settings.broker_user or (CONTROLLER_USER if password else None)  # as `broker config`
        bridge = _connect_bridge(db, broker or settings.broker, user, password)
        try:
            progress.update(task, description="compiling and publishing tables")
            try:
                with db.session() as s:
                    rollout_id = begin(s, bridge, list(gateway) if gateway else None, list(canary or [])).id
            except ApiError as e:
                raise _api_error(e) from None
            deadline = time.monotonic() + 15
            for info in bridge.published:
                progress.update(task, description=f"waiting for the broker to take {len(bridge.published)} tables")
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            missing = sum(not info.is_published() for info in bridge.published)
        finally:
            from protocols import topics

            for kind in topics.GATEWAY_PUBLISHES:  # leave no subscriptions queuing for this client id
                bridge.client.unsubscribe(topics.filter(kind))
            bridge.stop()
    with db.session() as s:
        from controller.models import Rollout

        current = view(s, s.get(Rollout, rollout_id))
    _rollout_tables(current)
    if missing:
        raise _fail("--broker", f"{missing} tables were not confirmed by the broker within 15 s",
                    f"check the broker, then `citygate rollout status {rollout_id}`")
    console.print(f"follow it with `citygate rollout status {rollout_id}`")


@report_app.command("calls")
def report_calls(
    group: Annotated[Literal["city", "gateway", "route", "target"], typer.Option(help="Rows per")] = "city",
    interval: Annotated[Literal["hour", "day", "month"], typer.Option(help="UTC periods")] = "day",
    from_: Annotated[str | None, typer.Option("--from", help="ISO time or UTC seconds, inclusive")] = None,
    to: Annotated[str | None, typer.Option(help="ISO time or UTC seconds, exclusive")] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of tables")] = False,
) -> None:
    """Offered, answered, abandoned, ... calls and ratios per group and UTC period, with totals."""
    import csv
    import sys

    from controller.api.deps import ApiError
    from controller.api.routes.reports import OUTCOMES, call_report_data

    try:
        with _db().session() as s:
            report = call_report_data(s, group, interval, from_, to)
    except ApiError as e:
        raise _api_error(e) from None
    cols = ["offered", *OUTCOMES, "talk_s", "answer_ratio", "abandon_ratio", "avg_talk_s"]
    if csv_out:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow([group, "period", *cols])
        for r in report["rows"]:
            w.writerow([r["key"], r["period"], *("" if r[c] is None else r[c] for c in cols)])
        return
    for title, rows, first in ((f"calls per {group} and {interval} (UTC)", report["rows"], "period"),
                               (f"totals per {group}", report["totals"], None)):
        t = RichTable(title=title)
        t.add_column(group)
        if first:
            t.add_column(first)
        for c in cols:
            t.add_column(c.replace("_", " "), justify="right")
        for r in rows:
            t.add_row(_opt(r["key"]), *([r[first]] if first else []), *(_opt(r[c]) for c in cols))
        console.print(t)


