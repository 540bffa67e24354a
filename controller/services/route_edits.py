"""Editing a city's routes from the console, with the checks the routes API makes (controller.api.routes.
call_routes): the centres a route names exist, the route alone passes `protocols.routing.load` (the
gateways' own validator), and every gateway it reaches still compiles. A refusal is a FieldError naming the
route field as the API does (`routes.hours[0].end`); nothing is kept then (the caller's session rolls back).

Also what the console shows before a rollout: each gateway's compiled table against the one it runs, as
routes and targets added, removed and changed (`table_diff`)."""

from __future__ import annotations

import json
import re

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller.compiler import CompileError, latest_tables, route_entry, table_doc
from controller.models import Centre, City, Gateway, GatewayService, Route, Service, TableVersion
from controller.reachability import default_after_hours
from controller.services.errors import Conflict, FieldError, NotFound
from controller.services.tables import compile_checked
from controller.services.times import TIME_MAX, TIME_MIN
from protocols import checks, routing

TABLE_NAMES = {"id": "name", "from": "valid_from", "until": "valid_until"}
STRATEGIES = ("sequential", "round_robin")
MAX_TARGETS, MAX_CALLERS, MAX_HOURS, MAX_TEXT = 64, 256, 64, 48
FIELDS = ("name", "service", "targets", "strategy", "hours", "caller", "fallback", "after_hours", "valid_from",
          "valid_until")


def city(s: Session, name: str) -> City:
    c = s.scalars(select(City).where(City.name == name)).first() if isinstance(name, str) and len(name) <= 128 else None
    if c is None:
        raise NotFound("city", f"no city {name!r}")
    return c


def route_of(s: Session, c: City, route_id: int) -> Route:
    r = s.get(Route, route_id)
    if r is None or r.city_id != c.id:
        raise NotFound("route_id", f"no route {route_id} in {c.name}")
    return r


def service_named(s: Session, number: str) -> Service:
    svc = s.scalars(select(Service).where(Service.number == number)).first() \
        if isinstance(number, str) and len(number) <= 32 else None
    if svc is None:
        raise FieldError("routes.service_id", f"names no service {number!r}")
    return svc


def reached(s: Session, cities: set, service_ids: set) -> list[Gateway]:
    """The gateways of these cities that serve one of these services: the tables a route change recompiles."""
    return list(s.scalars(select(Gateway).where(
        Gateway.city_id.in_(cities), Gateway.services.any(GatewayService.service_id.in_(service_ids)))
        .order_by(Gateway.id)))


def services(s: Session) -> list[str]:
    return list(s.scalars(select(Service.number).order_by(Service.number)))


def table_path_field(rest: str) -> str:
    """A path inside one table route ("hours[0].end", "from") -> the API field ("routes.hours[0].end")."""
    head, tail = re.match(r"([A-Za-z_]*)(.*)", rest).groups()
    return f"routes.{TABLE_NAMES.get(head, head)}{tail}"


def _texts(values, field: str, most: int, pred=None, why: str = "") -> list[str]:
    if not isinstance(values, list) or len(values) > most:
        raise FieldError(f"routes.{field}", f"a list of at most {most}")
    for i, v in enumerate(values):
        if not isinstance(v, str) or not 1 <= len(v) <= MAX_TEXT or (pred and not pred(v)):
            raise FieldError(f"routes.{field}[{i}]", why or f"at most {MAX_TEXT} characters")
    return values


def _checked_values(s: Session, v: dict) -> dict:
    """The shape checks the API's schema (RouteIn) makes, as FieldErrors; `service` is a service number."""
    if not checks.is_ident(v.get("name")):
        raise FieldError("routes.name", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
    svc = service_named(s, v.get("service"))
    _texts(v.get("targets", []), "targets", MAX_TARGETS)
    _texts(v.get("caller", []), "caller", MAX_CALLERS)
    if v.get("strategy") not in STRATEGIES:
        raise FieldError("routes.strategy", f"must be one of {', '.join(STRATEGIES)}")
    hours = v.get("hours")
    if hours is not None and (not isinstance(hours, list) or len(hours) > MAX_HOURS):
        raise FieldError("routes.hours", f"a list of at most {MAX_HOURS} windows, or none (always open)")
    for key in ("fallback", "after_hours"):
        if v.get(key) is not None and not isinstance(v[key], dict):
            raise FieldError(f"routes.{key}", "an action: reject, callback, next, or forward with a target")
    for key in ("valid_from", "valid_until"):
        t = v.get(key)
        if t is not None and (type(t) is not int or not TIME_MIN <= t <= TIME_MAX):
            raise FieldError(f"routes.{key}", f"UTC seconds from {TIME_MIN} to {TIME_MAX}, or none")
    out = {k: v.get(k) for k in FIELDS if k != "service"}
    out["service_id"] = svc.id
    return out


def check_centres(s: Session, r: Route) -> dict[str, Centre]:
    named = [(f"routes.targets[{i}]", code) for i, code in enumerate(r.targets or [])]
    named += [(f"routes.{key}.target", act["target"]) for key, act in (("fallback", r.fallback),
              ("after_hours", r.after_hours)) if isinstance(act, dict) and act.get("target") is not None]
    centres = {}
    for field, code in named:
        c = s.scalars(select(Centre).where(Centre.code == code)).first() if isinstance(code, str) else None
        if c is None:
            raise FieldError(field, f"names no call centre: {json.dumps(code)}")
        centres[code] = c
    return centres


def check_alone(r: Route, centres: dict[str, Centre]) -> None:
    """The route in a table of its own, through the gateways' validator."""
    doc = {"schema": 1, "gateway": "route-check", "version": 1, "tz": "UTC0", "deny": [], "closed": [],
           "targets": {code: {"number": c.number, "via": ["out"]} for code, c in centres.items()},
           "routes": [route_entry(r)]}
    try:
        routing.load(doc)
    except routing.TableError as e:
        if e.path.startswith("routes[0]."):
            raise FieldError(table_path_field(e.path[len("routes[0]."):]), e.reason) from None
        raise FieldError("routes", f"{e.path}: {e.reason}") from None


def _compile_reached(s: Session, r: Route, cities: set, service_ids: set, deleted: bool = False) -> None:
    def field(e: CompileError) -> str | None:
        m = re.match(r"routes\[(\d+)\]\.(.+)", e.path)
        if m and not deleted:
            doc = table_doc(s, s.get(Gateway, e.gateway), 1, 0)
            if doc["routes"][int(m.group(1))]["id"] == r.name:
                return table_path_field(m.group(2))
        return None

    compile_checked(s, reached(s, cities, service_ids), field, "routes")


def _unique(s: Session, city_id: int, name: str, route: Route | None) -> None:
    other = s.scalars(select(Route).where(Route.city_id == city_id, Route.name == name)).first()
    if other is not None and other is not route:
        raise Conflict("routes.name", f"routes entry {other.id} already has this value")


def save_route(s: Session, city_name: str, route_id: int | None, values: dict) -> Route:
    """Create (route_id None) or replace a city's route; checked as the API checks it; compiles what it reaches."""
    c = city(s, city_name)
    route = route_of(s, c, route_id) if route_id is not None else None
    new = _checked_values(s, values)
    _unique(s, c.id, new["name"], route)
    if route is None:
        route = Route(city_id=c.id, **new)
        if route.after_hours is None:  # as the API: a time-limited route beside others yields out of hours
            route.after_hours = default_after_hours(s, c.id, route.service_id, route.caller, route.hours)
        s.add(route)
        old_service = route.service_id
    else:
        old_service = route.service_id
        for k, v in new.items():
            setattr(route, k, v)
    s.flush()
    check_alone(route, check_centres(s, route))
    _compile_reached(s, route, {c.id}, {route.service_id, old_service})
    return route


def delete_route(s: Session, city_name: str, route_id: int) -> str:
    c = city(s, city_name)
    route = route_of(s, c, route_id)
    name, service_id = route.name, route.service_id
    s.delete(route)
    s.flush()
    _compile_reached(s, route, {c.id}, {service_id}, deleted=True)
    return name


def editable(s: Session, city_name: str) -> list[dict]:
    """The city's routes with their row ids and stored values (the edit forms start from them)."""
    c = city(s, city_name)
    rows = s.scalars(select(Route).options(selectinload(Route.service)).where(Route.city_id == c.id)
                     .order_by(Route.name, Route.valid_from))
    return [{"id": r.id, "name": r.name, "service": r.service.number, "targets": list(r.targets or []),
             "strategy": r.strategy, "hours": r.hours, "caller": list(r.caller or []), "fallback": r.fallback,
             "after_hours": r.after_hours, "valid_from": r.valid_from, "valid_until": r.valid_until} for r in rows]


def _show(v) -> str:
    if isinstance(v, list):
        return ", ".join(_show(x) for x in v) if v else "none"
    if isinstance(v, dict):
        return " ".join(_show(x) for x in v.values())
    return "none" if v is None else str(v)


def _compare(kind: str, old: dict, new: dict) -> list[dict]:
    """Entries added, removed and changed (each changed key as `key: old → new`), by name."""
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None or b is None:
            entry = b if a is None else a
            shown = "; ".join(f"{k} {_show(v)}" for k, v in entry.items() if k != "id")
            out.append({"kind": kind, "name": name, "change": "added" if a is None else "removed", "detail": shown})
            continue
        keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
        out.append({"kind": kind, "name": name, "change": "changed",
                    "detail": "; ".join(f"{k}: {_show(a.get(k))} → {_show(b.get(k))}" for k in keys)})
    return out


def _doc(body: str | None) -> dict:
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        doc = {}
    return doc if isinstance(doc, dict) else {}


def table_diff(old_body: str | None, new_body: str | None) -> list[dict]:
    """What `new_body` changes against `old_body`, readably: routes (by id and port) and targets added,
    removed or changed, and the table-wide lists (deny prefixes, closed dates, time zone)."""
    old, new = _doc(old_body), _doc(new_body)

    def routes(doc):
        rows = doc.get("routes") if isinstance(doc.get("routes"), list) else []
        return {f"{r.get('id')} ({r.get('port')})": r for r in rows if isinstance(r, dict)}

    def targets(doc):
        t = doc.get("targets")
        return {k: v for k, v in t.items() if isinstance(v, dict)} if isinstance(t, dict) else {}

    if not old:  # nothing applied yet: the whole table is new, said in one line
        return [{"kind": "table", "name": "whole table", "change": "added",
                 "detail": f"{len(routes(new))} routes, {len(targets(new))} targets (the gateway runs no table yet)"}]
    out = _compare("route", routes(old), routes(new)) + _compare("target", targets(old), targets(new))
    for key in ("deny", "closed", "tz", "menus"):
        if old.get(key) != new.get(key):
            a, b = old.get(key), new.get(key)
            if isinstance(a, list) and isinstance(b, list):
                more, less = [x for x in b if x not in a], [x for x in a if x not in b]
                detail = "; ".join(p for p in (more and "added " + _show(more), less and "removed " + _show(less)) if p)
            else:
                detail = "changed" if key == "menus" else f"{_show(a)} → {_show(b)}"
            out.append({"kind": "table", "name": key, "change": "changed", "detail": detail})
    return out


def gateway_diffs(s: Session, city_name: str) -> dict[str, list[dict]]:
    """For each gateway of the city: its latest compiled table against the table it runs (applied)."""
    c = city(s, city_name)
    gws = list(s.scalars(select(Gateway).where(Gateway.city_id == c.id).order_by(Gateway.id)))
    latest = latest_tables(s, [g.id for g in gws])
    out = {}
    for gw in gws:
        tv = latest.get(gw.id)
        running = None
        if gw.applied_version:
            running = s.scalars(select(TableVersion.body).where(TableVersion.gateway_id == gw.id,
                                                                TableVersion.version == gw.applied_version)).first()
        out[gw.id] = table_diff(running, tv.body) if tv is not None and tv.version != gw.applied_version else []
    return out
