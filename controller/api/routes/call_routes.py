"""Route CRUD: how a city's calls to a service are routed (several rows with from/until make a schedule).

A route body is checked three ways before it is kept: the centres it names exist; the route alone
passes `protocols.routing.load` (the gateways' own validator); and every gateway it reaches still
compiles. Failures are 422s naming the route field (`routes.hours[0].end`).
"""

import re
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.orm import Session

from controller.api.deps import INT32_MAX, Operator, Reader
from controller.api.routes.common import (
    TIME_MAX,
    TIME_MIN,
    In,
    OrmModel,
    compile_checked,
    create_row,
    crud_router,
    partial,
)
from controller.api.routes.region import Ident
from controller.compiler import CompileError, table_doc
from controller.models import City, Gateway, Route, Service
from controller.reachability import default_after_hours
from controller.services.route_edits import check_alone, check_centres, reached, table_path_field

Short = Annotated[str, Field(max_length=48)]


class RouteIn(In):
    city_id: int = Field(ge=1, le=INT32_MAX)
    service_id: int = Field(ge=1, le=INT32_MAX)
    name: Ident = Field(description="the route id in tables; unique within a city")
    targets: list[Short] = Field(default_factory=list, max_length=64, description="centre codes, in dialling order")
    strategy: str = Field("sequential", max_length=16)
    hours: list[dict[str, Any]] | None = Field(None, max_length=64,
                                               description='[{"days": "12345", "start": "08:00", '
                                                           '"end": "18:00"}]; null = always open')
    caller: list[Short] = Field(default_factory=list, max_length=256, description="caller prefixes; empty = any")
    fallback: dict[str, Any] | None = Field(None, max_length=8,
                                            description='{"action": "reject|callback|forward", "target"}')
    after_hours: dict[str, Any] | None = Field(None, max_length=8)
    valid_from: int | None = Field(None, ge=TIME_MIN, le=TIME_MAX, description="UTC seconds; null = open")
    valid_until: int | None = Field(None, ge=TIME_MIN, le=TIME_MAX,
                                    description="UTC seconds, exclusive; null = open")


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


def _after(s: Session, r: Route, op: str, old: dict) -> None:
    """The checks of the console's route editor (controller.services.route_edits), then every gateway it
    reaches must still compile; their FieldErrors answer 422 naming the field."""
    if op != "delete":
        check_alone(r, check_centres(s, r))

    def field(e: CompileError) -> str | None:
        m = re.match(r"routes\[(\d+)\]\.(.+)", e.path)
        if m and op != "delete":
            doc = table_doc(s, s.get(Gateway, e.gateway), 1, 0)
            if doc["routes"][int(m.group(1))]["id"] == r.name:
                return table_path_field(m.group(2))
        return None

    cities = {r.city_id, old.get("city_id", r.city_id)}
    services = {r.service_id, old.get("service_id", r.service_id)}
    compile_checked(s, reached(s, cities, services), field, "routes")


def _before(s: Session, r: Route, op: str, changes: dict) -> None:
    if op == "create" and r.after_hours is None:  # a time-limited route beside others yields to them out of hours
        r.after_hours = default_after_hours(s, r.city_id, r.service_id, r.caller, r.hours)


RULES = {"unique": ("city_id", "name"), "refs": {"city_id": City, "service_id": Service}, "before": _before,
         "after": _after}


def create_route(s: Session, body: RouteIn) -> Route:
    """Add a route with every check the API makes (422/409 ApiError naming the field); compiles what it reaches."""
    return create_row(s, "routes", Route, body.model_dump(), **RULES)


router = crud_router("routes", Route, RouteIn, partial(RouteIn), RouteOut, read=Reader, write=Operator, **RULES)
