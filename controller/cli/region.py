"""`citygate service | city | centre | deny | holiday | calendar`: the region from the command line.

The same service as the API and the console's Region page (controller.services.region): a bad value is
refused naming the field as the API does (`centres.capacity`), a row in use cannot go, and the gateways
an edit affects are compiled in the same transaction (publish them with `citygate rollout start`).
Rows are named as people name them: a service by its number, a city by its name, a centre by its code,
a deny prefix by itself, a holiday by its calendar (`region` or a city's name) and date.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from controller.cli.base import app, console
from controller.cli.common import _db, _fail
from controller.cli.output import CSV_OPTION, JSON_OPTION, Col, emit

service_app = typer.Typer(help="Services: the numbers citizens dial (102, 505).", no_args_is_help=True)
city_app = typer.Typer(help="Cities and their time zones.", no_args_is_help=True)
centre_app = typer.Typer(help="Call centres: the numbers gateways dial, their lines and how they are shared.",
                         no_args_is_help=True)
deny_app = typer.Typer(help="Deny prefixes: numbers no gateway ever dials.", no_args_is_help=True)
holiday_app = typer.Typer(help="Holidays in the region's calendar or a city's.", no_args_is_help=True)
calendar_app = typer.Typer(help="Calendars: the region's and each city's holidays.", no_args_is_help=True)
for _sub, _name in ((service_app, "service"), (city_app, "city"), (centre_app, "centre"), (deny_app, "deny"),
                    (holiday_app, "holiday"), (calendar_app, "calendar")):
    app.add_typer(_sub, name=_name)

KEYS = {"services": ("number", "NUMBER"), "cities": ("name", "NAME"), "centres": ("code", "CODE"),
        "deny-prefixes": ("prefix", "PREFIX")}


def _run(work: Callable) -> None:
    """Run `work(session)` in one transaction; a domain error is `field: reason` on stderr, exit 2."""
    from controller.services.errors import DomainError

    try:
        with _db().session() as s:
            text = work(s)
    except DomainError as e:
        raise _fail(e.field, e.reason) from None
    console.print(text, highlight=False)


def _find(s, kind: str, key: str):
    from sqlalchemy import select

    from controller.services import region

    field, metavar = KEYS[kind]
    model = region.KINDS[kind].model
    row = s.scalar(select(model).where(getattr(model, field) == key))
    if row is None:
        raise _fail(metavar, f"no {kind} entry with the {field} {key!r}")
    return row


def _given(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _list(kind: str, cols: list[Col], title: str, as_csv: bool, as_json: bool) -> None:
    from controller.services import region

    with _db().session() as s:
        rows = [{c.key: getattr(r, c.key) for c in cols} for r in region.rows(s, kind)]
    emit(console, rows, cols, title, as_csv, as_json)


def _add(kind: str, values: dict, what: Callable) -> None:
    from controller.services import region

    _run(lambda s: f"{what(region.create(s, kind, values))} added; its gateways are compiled")


def _set(kind: str, key: str, changes: dict, what: Callable) -> None:
    from controller.services import region

    if not changes:
        raise _fail("options", "nothing to change: give at least one option (see --help)")
    _run(lambda s: f"{what(region.update(s, kind, _find(s, kind, key).id, changes))} saved; its gateways are compiled")


def _remove(kind: str, key: str) -> None:
    from controller.services import region

    def work(s):
        region.delete(s, kind, _find(s, kind, key).id)
        return f"{kind} entry {key} removed"
    _run(work)


Number = Annotated[str, typer.Argument(metavar="NUMBER", help="What citizens dial, e.g. 102")]
Holidays = Annotated[bool | None, typer.Option("--closed-on-holidays/--open-on-holidays",
                                               help="Holidays close its routes (emergency lines: --open-on-holidays)")]


@service_app.command("list")
def service_list(as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every service."""
    _list("services", [Col("number", ident=True), Col("name"), Col("closed_on_holidays")], "services", as_csv, as_json)


@service_app.command("add")
def service_add(number: Number, name: Annotated[str, typer.Option(help="e.g. Police")],
                closed: Holidays = True) -> None:
    """Add a service."""
    _add("services", {"number": number, "name": name, "closed_on_holidays": closed},
         lambda o: f"service {o.number} ({o.name})")


@service_app.command("set")
def service_set(number: Number, name: Annotated[str | None, typer.Option()] = None,
                new_number: Annotated[str | None, typer.Option("--number", help="A new number")] = None,
                closed: Holidays = None) -> None:
    """Change a service."""
    _set("services", number, _given(name=name, number=new_number, closed_on_holidays=closed),
         lambda o: f"service {o.number}")


@service_app.command("remove")
def service_remove(number: Number) -> None:
    """Remove a service no route or gateway port uses."""
    _remove("services", number)


CityName = Annotated[str, typer.Argument(metavar="NAME", help="The city's name, e.g. Toretsk")]


@city_app.command("list")
def city_list(as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every city and its time zone."""
    _list("cities", [Col("name", ident=True), Col("zone", ident=True)], "cities", as_csv, as_json)


@city_app.command("add")
def city_add(name: CityName, zone: Annotated[str, typer.Option(help="IANA time zone")] = "Europe/Kyiv") -> None:
    """Add a city (then `citygate gateway add ... --city NAME`)."""
    _add("cities", {"name": name, "zone": zone}, lambda o: f"city {o.name} ({o.zone})")


@city_app.command("set")
def city_set(name: CityName, new_name: Annotated[str | None, typer.Option("--name", help="A new name")] = None,
             zone: Annotated[str | None, typer.Option(help="IANA time zone")] = None) -> None:
    """Rename a city or change its time zone (its gateways are compiled)."""
    _set("cities", name, _given(name=new_name, zone=zone), lambda o: f"city {o.name}")


@city_app.command("remove")
def city_remove(name: CityName) -> None:
    """Remove a city without gateways, routes or holidays."""
    _remove("cities", name)


Code = Annotated[str, typer.Argument(metavar="CODE", help="The centre's code: its target id in tables")]
Capacity = Annotated[int | None, typer.Option(help="Lines: calls it takes at once, shared among the gateways")]
Ring = Annotated[int | None, typer.Option("--ring-timeout", help="Seconds to ring before the next centre")]


@centre_app.command("list")
def centre_list(as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every centre with its lines and the split the compiler made (gateway: max_calls, by peak calls)."""
    from controller.services import region_view

    with _db().session() as s:
        rows = region_view.centres(s)
    for r in rows:
        r["split"] = ", ".join(f"{g}: {n}" for g, n in r["shares"].items()) + (f" ({r['warning']})"
                                                                              if r["warning"] else "")
    cols = [Col("code", ident=True), Col("name"), Col("number", ident=True), Col("capacity", right=True),
            Col("ring_timeout_s", right=True), Col("split")]
    if as_json:
        cols += [Col("shares"), Col("peaks"), Col("warning")]
    emit(console, rows, cols, "call centres", as_csv, as_json)


@centre_app.command("add")
def centre_add(code: Code, number: Annotated[str, typer.Option(help="E.164, e.g. +380626000000")],
               name: Annotated[str, typer.Option()] = "", capacity: Capacity = None, ring_timeout: Ring = 30) -> None:
    """Add a call centre (a number a deny prefix covers is refused)."""
    _add("centres", {"code": code, "name": name, "number": number, "capacity": capacity,
                     "ring_timeout_s": ring_timeout}, lambda o: f"centre {o.code} ({o.number})")


@centre_app.command("set")
def centre_set(code: Code, number: Annotated[str | None, typer.Option()] = None,
               name: Annotated[str | None, typer.Option()] = None, capacity: Capacity = None,
               no_cap: Annotated[bool, typer.Option("--no-cap", help="No cap on its calls")] = False,
               ring_timeout: Ring = None) -> None:
    """Change a centre (the gateways whose routes dial it are compiled)."""
    changes = _given(number=number, name=name, capacity=capacity, ring_timeout_s=ring_timeout)
    if no_cap:
        changes["capacity"] = None
    _set("centres", code, changes, lambda o: f"centre {o.code}")


@centre_app.command("remove")
def centre_remove(code: Code) -> None:
    """Remove a centre no route or menu dials."""
    _remove("centres", code)


PrefixArg = Annotated[str, typer.Argument(metavar="PREFIX", help="+ then 1-15 digits, e.g. +7")]


@deny_app.command("list")
def deny_list(as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every deny prefix."""
    _list("deny-prefixes", [Col("prefix", ident=True), Col("note")], "deny prefixes", as_csv, as_json)


@deny_app.command("add")
def deny_add(prefix: PrefixArg, note: Annotated[str, typer.Option()] = "") -> None:
    """Add a deny prefix (every gateway is compiled)."""
    _add("deny-prefixes", {"prefix": prefix, "note": note}, lambda o: f"deny prefix {o.prefix}")


@deny_app.command("remove")
def deny_remove(prefix: PrefixArg) -> None:
    """Remove a deny prefix (every gateway is compiled)."""
    _remove("deny-prefixes", prefix)


Calendar = Annotated[str, typer.Option(help="`region` (every city) or a city's name")]
Day = Annotated[str, typer.Argument(metavar="DATE", help="YYYY-MM-DD")]


def _calendars(as_csv: bool, as_json: bool) -> None:
    from controller.services import region_view

    with _db().session() as s:
        rows = [{"calendar": c["calendar"], "date": h["date"]} for c in region_view.calendars(s) for h in c["holidays"]]
    emit(console, rows, [Col("calendar", ident=True), Col("date", ident=True)], "holidays", as_csv, as_json)


@holiday_app.command("list")
def holiday_list(as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every holiday with its calendar."""
    _calendars(as_csv, as_json)


@calendar_app.command("list")
def calendar_list(as_json: JSON_OPTION = False) -> None:
    """Each calendar (the region's, then each city's) with its holidays."""
    import json

    from controller.services import region_view

    with _db().session() as s:
        cals = region_view.calendars(s)
    if as_json:
        typer.echo(json.dumps([{"calendar": c["calendar"], "dates": [h["date"] for h in c["holidays"]]}
                               for c in cals]))
        return
    for c in cals:
        console.print(f"{c['calendar']}: {', '.join(h['date'] for h in c['holidays']) or 'no holidays'}",
                      highlight=False)


@holiday_app.command("add")
def holiday_add(day: Day, calendar: Calendar = "region") -> None:
    """Add a holiday to a calendar (the gateways it closes are compiled)."""
    from controller.services import region, region_view

    def work(s):
        h = region.create(s, "holidays", {"city_id": region_view.calendar_city(s, calendar), "date": day})
        return f"holiday {h.date} added to {calendar}"
    _run(work)


@holiday_app.command("remove")
def holiday_remove(day: Day, calendar: Calendar = "region") -> None:
    """Remove a holiday from a calendar."""
    from sqlalchemy import select

    from controller.models import Holiday
    from controller.services import region, region_view

    def work(s):
        city_id = region_view.calendar_city(s, calendar)
        h = s.scalar(select(Holiday).where(Holiday.date == day, Holiday.city_id.is_(None) if city_id is None
                                           else Holiday.city_id == city_id))
        if h is None:
            raise _fail("DATE", f"no holiday {day} in the calendar {calendar}")
        region.delete(s, "holidays", h.id)
        return f"holiday {day} removed from {calendar}"
    _run(work)
