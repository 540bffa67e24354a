"""`citygate menu list | show | add | remove`: services' menus (IVR at the edge, DESIGN §5a) from the command line.

The same service the API runs (controller.services.menus): a bad menu is refused naming the field, and
the gateways it reaches are compiled in the same transaction (publish them with `citygate rollout start`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from controller.cli.base import app, console
from controller.cli.common import _db, _fail
from controller.cli.output import JSON_OPTION

menu_app = typer.Typer(help="Services' menus: a key per department, the operator when nobody presses one.",
                       no_args_is_help=True)
app.add_typer(menu_app, name="menu")


def _option(text: str) -> tuple[str, dict]:
    """KEY=CENTRE[,CENTRE...][:LABEL] -> (key, option)."""
    key, sep, rest = text.partition("=")
    targets, _, label = rest.partition(":")
    codes = [c.strip() for c in targets.split(",") if c.strip()]
    if not sep or not key or not codes:
        raise _fail("--option", f"{text!r} is not KEY=CENTRE[,CENTRE...][:LABEL]",
                    "e.g. --option 2=social-services:Social services --option 0=city-hall-operator:Operator")
    return key, {"label": label.strip(), "targets": codes, "strategy": "sequential"}


def _ids(s, service: str, city: str | None) -> tuple[int, int | None]:
    from sqlalchemy import select

    from controller.models import City, Service

    service_id = s.scalar(select(Service.id).where(Service.number == service))
    if service_id is None:
        raise _fail("--service", f"no service with the number {service!r}")
    if city is None:
        return service_id, None
    city_id = s.scalar(select(City.id).where(City.name == city))
    if city_id is None:
        raise _fail("--city", f"no city named {city!r}")
    return service_id, city_id


def _find(s, name: str):
    from sqlalchemy import select

    from controller.models import Menu

    m = s.scalar(select(Menu).where(Menu.name == name))
    if m is None:
        raise _fail("NAME", f"no menu named {name!r}")
    return m


def _print(rows: list[dict], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for m in rows:
        keys = ", ".join(f"{k}={'+'.join(o['targets'])}" + (f" ({o['label']})" if o.get("label") else "")
                         for k, o in sorted(m["options"].items()))
        where = f"city {m['city_id']}" if m["city_id"] is not None else "every city"
        console.print(f"{m['name']}: service {m['service_id']}, {where}, prompt {m['prompt']!r}, "
                      f"timeout {m['timeout_s']} s x {m['tries']}, default {m['default_option']}: {keys}",
                      highlight=False)


@menu_app.command("list")
def menu_list(as_json: JSON_OPTION = False) -> None:
    """Every menu: its service, city, prompt and keys."""
    from controller.services import menus

    with _db().session() as s:
        _print([menus.as_dict(m) for m in menus.list_menus(s)], as_json)


@menu_app.command("add")
def menu_add(
    name: Annotated[str, typer.Option(help="The menu id in tables")],
    service: Annotated[str, typer.Option(help="The service's number, e.g. 505")],
    prompt: Annotated[str, typer.Option(help="What the board plays: an audio file on the module or a TTS text id")],
    option: Annotated[list[str], typer.Option(help="KEY=CENTRE[,CENTRE...][:LABEL], once per key")],
    default: Annotated[str, typer.Option(help="The key of callers who press nothing: the operator's")],
    city: Annotated[str | None, typer.Option(help="Only this city (default: every city without its own)")] = None,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for a key after the prompt")] = 8,
    tries: Annotated[int, typer.Option(help="Times the prompt is played before the default")] = 2,
) -> None:
    """Add a menu; the gateways it reaches are compiled (publish them with `citygate rollout start`)."""
    from controller.services import menus
    from controller.services.errors import DomainError

    options = dict(_option(o) for o in option)
    try:
        with _db().session() as s:
            service_id, city_id = _ids(s, service, city)
            m = menus.create_menu(s, {"name": name, "service_id": service_id, "city_id": city_id, "prompt": prompt,
                                      "timeout_s": timeout, "tries": tries, "default_option": default,
                                      "options": options})
            console.print(f"menu {m.name} added (id {m.id}); its gateways are compiled", highlight=False)
    except DomainError as e:
        raise _fail(e.field, e.reason) from None


@menu_app.command("show")
def menu_show(name: Annotated[str, typer.Argument(metavar="NAME")], as_json: JSON_OPTION = False) -> None:
    """One menu."""
    from controller.services import menus

    with _db().session() as s:
        _print([menus.as_dict(_find(s, name))], as_json)


@menu_app.command("remove")
def menu_remove(name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Remove a menu: its service's routes dial their own targets again (compiled, to be published)."""
    from controller.services import menus
    from controller.services.errors import DomainError

    try:
        with _db().session() as s:
            menus.delete_menu(s, _find(s, name).id)
    except DomainError as e:
        raise _fail(e.field, e.reason) from None
    console.print(f"menu {name} removed; its gateways are compiled", highlight=False)
