"""Region CRUD: services, cities, call centres, forbidden prefixes, holidays.

Every write that changes what a gateway's table says recompiles the gateways it affects, in the
same transaction: a change that would make an invalid table is refused with 422 and rolled back.
"""

from datetime import date as Date
from typing import Annotated

from pydantic import AfterValidator, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.api.deps import ApiError, Operator, Reader
from controller.api.routes.common import In, OrmModel, compile_checked, crud_router, gateways_where, in_use, partial
from controller.models import Centre, City, DenyPrefix, Gateway, GatewayService, Holiday, Route, Service
from controller.timezones import zone_rule
from protocols import checks


def _rule(pred, reason):
    def check(v):
        if v is not None and not pred(v):
            raise ValueError(reason)
        return v
    return AfterValidator(check)


def _is_date(v: str) -> bool:
    try:
        return len(v) == 10 and Date.fromisoformat(v) is not None
    except ValueError:
        return False


Number = Annotated[str, _rule(checks.is_number, "must be E.164 (+ then 2-15 digits) or a short number")]
Ident = Annotated[str, _rule(checks.is_ident, "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,47}")]
Prefix = Annotated[str, _rule(checks.is_e164_prefix, "must be an E.164 prefix: + then 1-15 digits")]
DateText = Annotated[str, _rule(_is_date, "must be a date YYYY-MM-DD")]


# ---------------------------------------------------------------- schemas


class ServiceIn(In):
    number: Number = Field(description="what citizens dial, e.g. 102")
    name: str = Field(min_length=1, max_length=128)


class ServiceOut(OrmModel):
    id: int
    number: str
    name: str


class CityIn(In):
    name: str = Field(min_length=1, max_length=128)
    zone: str = Field(max_length=64, description="IANA time zone, e.g. Europe/Kyiv")


class CityOut(OrmModel):
    id: int
    name: str
    zone: str


class CentreIn(In):
    code: Ident = Field(description="the target id in tables")
    name: str = Field("", max_length=128)
    number: Number
    capacity: int | None = Field(None, ge=0, description="lines: max calls per gateway; null = no cap")
    ring_timeout_s: int = Field(30, ge=1, le=600)


class CentreOut(OrmModel):
    id: int
    code: str
    name: str
    number: str
    capacity: int | None
    ring_timeout_s: int


class DenyIn(In):
    prefix: Prefix
    note: str = Field("", max_length=128)


class DenyOut(OrmModel):
    id: int
    prefix: str
    note: str


class HolidayIn(In):
    city_id: int | None = Field(None, description="null = region-wide")
    date: DateText


class HolidayOut(OrmModel):
    id: int
    city_id: int | None
    date: str


# ---------------------------------------------------------------- hooks


def _names(rows, fmt) -> list[str]:
    return [fmt(r) for r in rows]


def _service_before(s: Session, svc: Service, op: str, changes: dict) -> None:
    if op == "delete":
        used = _names(s.scalars(select(Route).where(Route.service_id == svc.id)), lambda r: f"route {r.name}")
        used += _names(s.scalars(select(GatewayService).where(GatewayService.service_id == svc.id)),
                       lambda g: f"gateway {g.gateway_id} port {g.port}")
        in_use("services", "id", used)


def _city_before(s: Session, city: City, op: str, changes: dict) -> None:
    if "zone" in changes:
        try:
            zone_rule(changes["zone"])
        except ValueError as e:
            raise ApiError(422, "cities.zone", str(e)) from None
    if op == "delete":
        used = _names(s.scalars(select(Gateway).where(Gateway.city_id == city.id)), lambda g: f"gateway {g.id}")
        used += _names(s.scalars(select(Route).where(Route.city_id == city.id)), lambda r: f"route {r.name}")
        used += _names(s.scalars(select(Holiday).where(Holiday.city_id == city.id)), lambda h: f"holiday {h.date}")
        in_use("cities", "id", used)


def _city_after(s: Session, city: City, op: str, old: dict) -> None:
    if op == "update" and "zone" in old:
        compile_checked(s, gateways_where(s, Gateway.city_id == city.id),
                        lambda e: "cities.zone" if e.path == "tz" else None, "cities")


def routes_naming(s: Session, code: str) -> list[Route]:
    """Routes that dial or forward to a centre."""
    def names(r: Route) -> bool:
        acts = [a.get("target") for a in (r.fallback, r.after_hours) if a]
        return code in (r.targets or []) or code in acts
    return [r for r in s.scalars(select(Route).order_by(Route.id)) if names(r)]


def _centre_before(s: Session, c: Centre, op: str, changes: dict) -> None:
    if op == "delete" or changes.get("code", c.code) != c.code:
        in_use("centres", "code", [f"route {r.name} (city {r.city_id})" for r in routes_naming(s, c.code)])


def _centre_after(s: Session, c: Centre, op: str, old: dict) -> None:
    if op != "update":
        return
    cities = {r.city_id for r in routes_naming(s, c.code)}
    fields = {"number": "number", "ring_timeout_s": "ring_timeout_s", "max_calls": "capacity"}

    def field(e) -> str | None:
        return f"centres.{fields.get(e.path.rsplit('.', 1)[-1], 'code')}" if e.path.startswith("targets.") else None

    compile_checked(s, gateways_where(s, Gateway.city_id.in_(cities)), field, "centres")


def _deny_after(s: Session, d: DenyPrefix, op: str, old: dict) -> None:
    compile_checked(s, gateways_where(s), lambda e: "deny-prefixes.prefix" if e.path.startswith("deny") else None,
                    "deny-prefixes")


def _holiday_after(s: Session, h: Holiday, op: str, old: dict) -> None:
    cities = {h.city_id, old.get("city_id", h.city_id)}
    where = [] if None in cities else [Gateway.city_id.in_(cities)]
    compile_checked(s, gateways_where(s, *where), lambda e: "holidays.date" if e.path.startswith("closed") else None,
                    "holidays")


routers = [
    crud_router("services", Service, ServiceIn, partial(ServiceIn), ServiceOut, read=Reader, write=Operator,
                unique=("number",), before=_service_before),
    crud_router("cities", City, CityIn, partial(CityIn), CityOut, read=Reader, write=Operator,
                unique=("name",), before=_city_before, after=_city_after),
    crud_router("centres", Centre, CentreIn, partial(CentreIn), CentreOut, read=Reader, write=Operator,
                unique=("code",), before=_centre_before, after=_centre_after),
    crud_router("deny-prefixes", DenyPrefix, DenyIn, partial(DenyIn), DenyOut, read=Reader, write=Operator,
                unique=("prefix",), after=_deny_after),
    crud_router("holidays", Holiday, HolidayIn, partial(HolidayIn), HolidayOut, read=Reader, write=Operator,
                unique=("city_id", "date"), refs={"city_id": City}, after=_holiday_after, order=Holiday.date),
]
