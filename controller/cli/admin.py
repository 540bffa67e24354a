"""`citygate route | report`: a city's routes and the call report from the command line (`citygate gateway`
and `citygate rollout` are in gateways.py and rollouts.py; the helpers all commands share in common.py)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from rich.table import Table as RichTable

from controller.cli.base import app, console
from controller.cli.common import _db, _domain_error, _fail, _opt, _print_impact, _when
from controller.cli.output import CSV_OPTION, JSON_OPTION, Col, emit

# ---------------------------------------------------------------- admin: routes, reports
# The same functions the API's routes run, on the database of the settings (no server needed, except for
# `rollout start`, which publishes through the controller's broker).

route_app = typer.Typer(help="How a city's calls to a service are routed.", no_args_is_help=True)
app.add_typer(route_app, name="route")
report_app = typer.Typer(help="Reports on what the gateways recorded.", no_args_is_help=True)
app.add_typer(report_app, name="report")


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


def _route_rows(rows) -> list[dict]:
    def act(a):
        return None if not a else a.get("action", "?") + (f":{a['target']}" if a.get("target") else "")

    return [{"id": r.id, "city": r.city.name, "service": r.service.number, "name": r.name,
             "targets": " → ".join(r.targets), "caller": " ".join(r.caller or []) or None,
             "hours": "always" if not r.hours else "; ".join(f"{h.get('days')} {h.get('start')}-{h.get('end')}"
                                                             for h in r.hours),
             "fallback": act(r.fallback), "after_hours": act(r.after_hours),
             "from": _when(r.valid_from) if r.valid_from else None,
             "until": _when(r.valid_until) if r.valid_until else None} for r in rows]


ROUTE_COLS = [Col("id", right=True), Col("city"), Col("service"), Col("name", ident=True), Col("targets"),
              Col("caller"), Col("hours"), Col("fallback"), Col("after_hours", "after hours"), Col("from"),
              Col("until")]


def _print_routes(rows, as_csv: bool = False, as_json: bool = False) -> None:
    emit(console, _route_rows(rows), ROUTE_COLS, f"routes ({len(rows)})", as_csv, as_json)


@route_app.command("list")
def route_list(city: Annotated[str | None, typer.Option(help="Only this city's routes")] = None,
               as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every route (schedules: several rows with from/until)."""
    from sqlalchemy import select

    from controller.models import City, Route

    with _db().session() as s:
        q = select(Route).join(City).order_by(City.name, Route.service_id, Route.valid_from, Route.id)
        if city is not None:
            if s.scalars(select(City).where(City.name == city)).first() is None:
                raise _fail("--city", f"no city {city!r}")
            q = q.where(City.name == city)
        _print_routes(list(s.scalars(q)), as_csv, as_json)


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
    from controller.compiler import latest_table
    from controller.services import route_edits
    from controller.services.errors import DomainError
    from controller.services.times import parse_time

    try:
        with _db().session() as s:
            values = {"name": name, "service": service, "targets": list(target or []), "strategy": strategy,
                      "hours": _hours(hours or []), "caller": list(caller or []),
                      "fallback": _action(fallback, "--fallback"), "after_hours": _action(after_hours, "--after-hours"),
                      "valid_from": parse_time(valid_from, "--from"), "valid_until": parse_time(valid_until, "--until")}
            try:
                c = route_edits.city(s, city)
            except DomainError:
                raise _fail("--city", f"no city {city!r}", "see the cities in `citygate route list`") from None
            try:
                svc = route_edits.service_named(s, service)
            except DomainError:
                raise _fail("--service", f"no service with number {service!r}") from None
            before = {gw.id: latest_table(s, gw.id) for gw in route_edits.reached(s, {c.id}, {svc.id})}
            before = {gid: tv.body if tv else None for gid, tv in before.items()}
            route = route_edits.save_route(s, city, None, values)
            _print_routes([route])
            gateways = route_edits.reached(s, {c.id}, {svc.id})
            compiled = [(gw.id, latest_table(s, gw.id)) for gw in gateways]
            from controller import impact

            changes = {gw.id: impact.between(gw, before.get(gw.id), tv.body if tv else None)
                       for gw, (_, tv) in zip(gateways, compiled, strict=True) if before.get(gw.id)}
    except DomainError as e:
        raise _domain_error(e) from None
    t = RichTable(title="gateways recompiled")
    t.add_column("gateway")
    t.add_column("compiled version")
    for gid, tv in compiled:
        t.add_row(gid, _opt(tv.version if tv else None))
    console.print(t)
    from controller.reachability import table_warnings

    for _gid, tv in compiled:
        for warning in table_warnings(tv.body) if tv else []:
            console.print(f"[yellow]warning[/]: {warning}")
    with _db().session() as s:
        from controller.compiler import Region

        for sp in Region(s).splits().values():
            if sp.warning and any(gid in sp.shares for gid, _ in compiled):
                console.print(f"[yellow]warning[/]: {sp.warning}")
    if changes:
        _print_impact(changes, "what this changes")
    if compiled:
        console.print("publish with `citygate rollout start` (the running controller must use an external broker)")


@report_app.command("calls")
def report_calls(
    group: Annotated[Literal["city", "gateway", "route", "target"], typer.Option(help="Rows per")] = "city",
    interval: Annotated[Literal["hour", "day", "month"], typer.Option(help="UTC periods")] = "day",
    from_: Annotated[str | None, typer.Option("--from", help="ISO time or UTC seconds, inclusive")] = None,
    to: Annotated[str | None, typer.Option(help="ISO time or UTC seconds, exclusive")] = None,
    as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False,
) -> None:
    """Offered, answered, abandoned, ... calls and ratios per group and UTC period, with totals."""
    from controller.services.errors import DomainError
    from controller.services.reports import call_report_data
    from protocols.messages import OUTCOMES

    try:
        with _db().session() as s:
            report = call_report_data(s, group, interval, from_, to)
    except DomainError as e:
        raise _domain_error(e) from None
    if as_json:
        typer.echo(json.dumps(report, indent=1, default=str))
        return
    counts = [Col(c, right=True) for c in ("offered", *OUTCOMES, "talk_s", "answer_ratio", "abandon_ratio",
                                           "avg_talk_s")]
    rows = [r | {group: r["key"], "period": r["period"] or r["start"]} for r in report["rows"]]
    emit(console, rows, [Col(group, ident=True), Col("period"), *counts], f"calls per {group} and {interval} (UTC)",
         as_csv)
    if not as_csv:
        totals = [r | {group: r["key"]} for r in report["totals"]]
        emit(console, totals, [Col(group, ident=True), *counts], f"totals per {group}")
