"""Route CRUD: how a city's calls to a service are routed (several rows with from/until make a schedule).

A route body is checked three ways before it is kept: the centres it names exist; the route alone
passes `protocols.routing.load` (the gateways' own validator); and every gateway it reaches still
compiles. Failures are 422s naming the route field (`routes.hours[0].end`).
"""

import json
import re
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.api.deps import ApiError, Operator, Reader
from controller.api.routes.common import In, OrmModel, compile_checked, create_row, crud_router, gateways_where, partial
from controller.api.routes.region import Ident
from controller.compiler import CompileError, table_doc
from controller.models import Centre, City, Gateway, GatewayService, Route, Service
from protocols import routing

TABLE_NAMES = {"id": "name", "from": "valid_from", "until": "valid_until"}


class RouteIn(In):
    city_id: int
    service_id: int
    name: Ident = Field(description="the route id in tables; unique within a city")
    targets: list[str] = Field(default_factory=list, description="centre codes, in dialling order")
    strategy: str = "sequential"
    hours: list[dict[str, Any]] | None = Field(None, description='[{"days": "12345", "start": "08:00", '
                                                                  '"end": "18:00"}]; null = always open')
    caller: list[str] = Field(default_factory=list, description="caller prefixes; empty = any caller")
    fallback: dict[str, Any] | None = Field(None, description='{"action": "reject|callback|forward", "target"}')
    after_hours: dict[str, Any] | None = None
    valid_from: int | None = Field(None, description="UTC seconds; null = open")
    valid_until: int | None = Field(None, description="UTC seconds, exclusive; null = open")


class RouteOut(OrmModel):
    id: int
    city_id: int
    service_id: int
    name: str
    targets: list[str]
    strategy: str
    hours: list[dict[str, Any]] | None
    caller: list[str]
    fallback: dict[str, Any] | None
    after_hours: dict[str, Any] | None
    valid_from: int | None
    valid_until: int | None


def route_doc(r: Route, port: str = "*") -> dict:
    """The route as a table entry (the shape controller.compiler writes)."""
    doc = {"id": r.name, "port": port, "targets": list(r.targets or []), "strategy": r.strategy}
    for key, value in (("caller", r.caller), ("hours", r.hours), ("fallback", r.fallback),
                       ("after_hours", r.after_hours), ("from", r.valid_from), ("until", r.valid_until)):
        if value:
            doc[key] = value
    return doc


def _field(rest: str) -> str:
    """A path inside one table route ("hours[0].end", "from") -> the API field ("routes.hours[0].end")."""
    head, tail = re.match(r"([A-Za-z_]*)(.*)", rest).groups()
    return f"routes.{TABLE_NAMES.get(head, head)}{tail}"


def _check_centres(s: Session, r: Route) -> dict[str, Centre]:
    named = [(f"routes.targets[{i}]", code) for i, code in enumerate(r.targets or [])]
    named += [(f"routes.{key}.target", act["target"]) for key, act in (("fallback", r.fallback),
              ("after_hours", r.after_hours)) if isinstance(act, dict) and act.get("target") is not None]
    centres = {}
    for field, code in named:
        c = s.scalars(select(Centre).where(Centre.code == code)).first() if isinstance(code, str) else None
        if c is None:
            raise ApiError(422, field, f"names no call centre: {json.dumps(code)}")
        centres[code] = c
    return centres


def _check_alone(r: Route, centres: dict[str, Centre]) -> None:
    """The route in a table of its own, through the gateways' validator."""
    doc = {"schema": 1, "gateway": "route-check", "version": 1, "tz": "UTC0", "deny": [], "closed": [],
           "targets": {code: {"number": c.number, "via": ["out"]} for code, c in centres.items()},
           "routes": [route_doc(r)]}
    try:
        routing.load(doc)
    except routing.TableError as e:
        if e.path.startswith("routes[0]."):
            raise ApiError(422, _field(e.path[len("routes[0]."):]), e.reason) from None
        raise ApiError(422, "routes", f"{e.path}: {e.reason}") from None


def reached(s: Session, cities: set, services: set) -> list[Gateway]:
    return gateways_where(s, Gateway.city_id.in_(cities), Gateway.services.any(GatewayService.service_id.in_(services)))


def _after(s: Session, r: Route, op: str, old: dict) -> None:
    if op != "delete":
        _check_alone(r, _check_centres(s, r))

    def field(e: CompileError) -> str | None:
        m = re.match(r"routes\[(\d+)\]\.(.+)", e.path)
        if m and op != "delete":
            doc = table_doc(s, s.get(Gateway, e.gateway), 1, 0)
            if doc["routes"][int(m.group(1))]["id"] == r.name:
                return _field(m.group(2))
        return None

    cities = {r.city_id, old.get("city_id", r.city_id)}
    services = {r.service_id, old.get("service_id", r.service_id)}
    compile_checked(s, reached(s, cities, services), field, "routes")


RULES = {"unique": ("city_id", "name"), "refs": {"city_id": City, "service_id": Service}, "after": _after}


def create_route(s: Session, body: RouteIn) -> Route:
    """Add a route with every check the API makes (422/409 ApiError naming the field); compiles what it reaches."""
    return create_row(s, "routes", Route, body.model_dump(), **RULES)


router = crud_router("routes", Route, RouteIn, partial(RouteIn), RouteOut, read=Reader, write=Operator, **RULES)
