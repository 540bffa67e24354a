"""The region's configuration: services, cities, call centres, deny prefixes and holidays (DESIGN §2, §5a).

One set of rules for the API, the console's Region page and the CLI: values are checked by the schemas
below (errors name the field as the API does: `centres.capacity`), references must exist, unique values
are unique, a row still in use cannot go, and every write recompiles the gateways it affects in the same
transaction, so an edit that would make a table the gateways refuse is refused naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date as Date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from controller.models import Centre, City, DenyPrefix, Gateway, GatewayService, Holiday, Route, Service
from controller.services.errors import Conflict, FieldError, NotFound
from controller.services.menus import menus_naming
from controller.services.tables import compile_checked
from controller.timezones import zone_rule
from protocols import checks

INT32_MAX = 2**31 - 1
REGION_CALENDAR = "region"  # the calendar of region-wide holidays (city_id null); a city's is its name


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


class Values(BaseModel):
    """A row's values: unknown fields are refused (a typo is an error, not a silent no-op), and so is
    text the database cannot hold (NUL, lone surrogates)."""
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, v):
        if isinstance(v, str):
            if "\x00" in v:
                raise ValueError("must not contain NUL characters")
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode text (no lone surrogates)") from None
        return v


class ServiceIn(Values):
    number: Number = Field(description="what citizens dial, e.g. 102")
    name: str = Field(min_length=1, max_length=128)
    closed_on_holidays: bool = Field(True, description="holidays close its routes; false for emergency lines")


class CityIn(Values):
    name: str = Field(min_length=1, max_length=128)
    zone: str = Field(max_length=64, description="IANA time zone, e.g. Europe/Kyiv")


class CentreIn(Values):
    code: Ident = Field(description="the target id in tables")
    name: str = Field("", max_length=128)
    number: Number
    capacity: int | None = Field(None, ge=0, le=10_000, description="lines: max calls per gateway; null = no cap")
    ring_timeout_s: int = Field(30, ge=1, le=600)


class DenyIn(Values):
    prefix: Prefix
    note: str = Field("", max_length=128)


class HolidayIn(Values):
    city_id: int | None = Field(None, ge=1, le=INT32_MAX, description="null = region-wide")
    date: DateText


# ---------------------------------------------------------------- hooks: in use, zones, denied numbers, compiles


def in_use(name: str, fld: str, what: list[str]) -> None:
    """409 when `what` (descriptions of the rows using it) is not empty."""
    if what:
        shown = ", ".join(what[:5]) + (f" and {len(what) - 5} more" if len(what) > 5 else "")
        raise Conflict(f"{name}.{fld}", f"in use by {shown}")


def gateways_where(s: Session, *where) -> list[Gateway]:
    return list(s.scalars(select(Gateway).where(*where).order_by(Gateway.id)))


def routes_naming(s: Session, code: str) -> list[Route]:
    """Routes that dial or forward to a centre."""
    def names(r: Route) -> bool:
        acts = [a.get("target") for a in (r.fallback, r.after_hours) if a]
        return code in (r.targets or []) or code in acts
    return [r for r in s.scalars(select(Route).order_by(Route.id)) if names(r)]


def service_before(s: Session, svc: Service, op: str, changes: dict) -> None:
    if op == "delete":
        used = [f"route {r.name}" for r in s.scalars(select(Route).where(Route.service_id == svc.id))]
        used += [f"gateway {g.gateway_id} port {g.port}"
                 for g in s.scalars(select(GatewayService).where(GatewayService.service_id == svc.id))]
        in_use("services", "id", used)


def city_before(s: Session, city: City, op: str, changes: dict) -> None:
    if "zone" in changes:
        try:
            zone_rule(changes["zone"])
        except ValueError as e:
            raise FieldError("cities.zone", str(e)) from None
    if op == "delete":
        used = [f"gateway {g.id}" for g in s.scalars(select(Gateway).where(Gateway.city_id == city.id))]
        used += [f"route {r.name}" for r in s.scalars(select(Route).where(Route.city_id == city.id))]
        used += [f"holiday {h.date}" for h in s.scalars(select(Holiday).where(Holiday.city_id == city.id))]
        in_use("cities", "id", used)


def city_after(s: Session, city: City, op: str, old: dict) -> None:
    if op == "update" and "zone" in old:
        compile_checked(s, gateways_where(s, Gateway.city_id == city.id),
                        lambda e: "cities.zone" if e.path == "tz" else None, "cities")


def centre_before(s: Session, c: Centre, op: str, changes: dict) -> None:
    if op == "delete" or changes.get("code", c.code) != c.code:
        in_use("centres", "code", [f"route {r.name} (city {r.city_id})" for r in routes_naming(s, c.code)]
               + [f"menu {m.name}" for m in menus_naming(s, c.code)])
    number = changes.get("number", c.number)
    if op != "delete" and number:
        denied = [p.prefix for p in s.scalars(select(DenyPrefix)) if number.startswith(p.prefix)]
        if denied:  # a centre no gateway may ever dial is a configuration mistake, not a table to compile
            raise FieldError("centres.number", f"{number} is denied by the prefix {denied[0]}: no gateway "
                                               "ever dials it (remove that deny prefix first if it is wrong)")


def centre_after(s: Session, c: Centre, op: str, old: dict) -> None:
    if op != "update":
        return
    cities = {r.city_id for r in routes_naming(s, c.code)}
    fields = {"number": "number", "ring_timeout_s": "ring_timeout_s", "max_calls": "capacity"}

    def fld(e) -> str | None:
        return f"centres.{fields.get(e.path.rsplit('.', 1)[-1], 'code')}" if e.path.startswith("targets.") else None

    compile_checked(s, gateways_where(s, Gateway.city_id.in_(cities)), fld, "centres")


def deny_after(s: Session, d: DenyPrefix, op: str, old: dict) -> None:
    compile_checked(s, gateways_where(s), lambda e: "deny-prefixes.prefix" if e.path.startswith("deny") else None,
                    "deny-prefixes")


def holiday_after(s: Session, h: Holiday, op: str, old: dict) -> None:
    cities = {h.city_id, old.get("city_id", h.city_id)}
    where = [] if None in cities else [Gateway.city_id.in_(cities)]
    compile_checked(s, gateways_where(s, *where),
                    lambda e: "holidays.date" if e.path.startswith(("closed", "calendars")) else None, "holidays")


# ---------------------------------------------------------------- the five kinds of row, one way to edit them


@dataclass(frozen=True)
class Kind:
    name: str  # the API's resource name, the first part of every field an error names
    model: Any
    schema: type[Values]
    unique: tuple[str, ...] = ()
    refs: dict[str, Any] = field(default_factory=dict)
    before: Any = None
    after: Any = None
    order: Any = None


KINDS = {k.name: k for k in (
    Kind("services", Service, ServiceIn, ("number",), before=service_before),
    Kind("cities", City, CityIn, ("name",), before=city_before, after=city_after),
    Kind("centres", Centre, CentreIn, ("code",), before=centre_before, after=centre_after),
    Kind("deny-prefixes", DenyPrefix, DenyIn, ("prefix",), after=deny_after),
    Kind("holidays", Holiday, HolidayIn, ("city_id", "date"), {"city_id": City}, after=holiday_after,
         order=Holiday.date),
)}


def kind(name: str) -> Kind:
    found = KINDS.get(name)
    if found is None:
        raise NotFound("kind", f"no region resource {name!r} (one of {', '.join(KINDS)})")
    return found


def validate(k: Kind, values: dict) -> dict:
    """`values` checked and converted by the kind's schema; the first problem as a FieldError naming the field."""
    try:
        return k.schema.model_validate(values).model_dump()
    except ValidationError as e:
        err = e.errors()[0]
        where = k.name + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc") or ())
        raise FieldError(where, err.get("msg", "is invalid").removeprefix("Value error, ")) from None


def check_row(s: Session, k: Kind, values: dict, obj=None) -> None:
    """The foreign keys in `values` exist (422) and the `unique` fields name no other row (409)."""
    for key, ref in k.refs.items():
        if values.get(key) is not None and s.get(ref, values[key]) is None:
            raise FieldError(f"{k.name}.{key}", f"names no {ref.__tablename__} entry {values[key]}")
    if k.unique:
        merged = {u: values.get(u, getattr(obj, u, None)) for u in k.unique}
        conds = [getattr(k.model, u).is_(None) if v is None else getattr(k.model, u) == v for u, v in merged.items()]
        other = s.scalars(select(k.model).where(and_(*conds))).first()
        if other is not None and other is not obj:
            raise Conflict(f"{k.name}.{k.unique[-1]}", f"{k.name} entry {other.id} already has this value")


def rows(s: Session, name: str) -> list:
    k = kind(name)
    return list(s.scalars(select(k.model).order_by(k.order if k.order is not None else k.model.id)))


def get(s: Session, name: str, row_id: int):
    k = kind(name)
    obj = s.get(k.model, row_id) if type(row_id) is int and 1 <= row_id <= INT32_MAX else None
    if obj is None:
        raise NotFound("id", f"no {name} entry {row_id}")
    return obj


def create(s: Session, name: str, values: dict, checked: bool = False):
    """Add a row (values validated unless the caller's schema already did); its gateways are compiled."""
    k = kind(name)
    values = values if checked else validate(k, values)
    check_row(s, k, values)
    obj = k.model(**values)
    if k.before:
        k.before(s, obj, "create", values)
    s.add(obj)
    s.flush()
    if k.after:
        k.after(s, obj, "create", {})
    return obj


def update(s: Session, name: str, row_id: int, changes: dict, checked: bool = False):
    """Change some of a row's values (checked as the whole row they make); its gateways are compiled."""
    k = kind(name)
    obj = get(s, name, row_id)
    if not checked:
        current = {f: getattr(obj, f) for f in k.schema.model_fields}
        merged = validate(k, {**current, **changes})
        changes = {f: merged[f] for f in changes}
    check_row(s, k, changes, obj)
    if k.before:
        k.before(s, obj, "update", changes)
    old = {f: getattr(obj, f) for f in changes}
    for f, v in changes.items():
        setattr(obj, f, v)
    s.flush()
    if k.after:
        k.after(s, obj, "update", old)
    return obj


def delete(s: Session, name: str, row_id: int) -> None:
    """Remove a row that nothing uses (409 naming the users otherwise); its gateways are compiled."""
    k = kind(name)
    obj = get(s, name, row_id)
    if k.before:
        k.before(s, obj, "delete", {})
    s.delete(obj)
    s.flush()
    if k.after:
        k.after(s, obj, "delete", {})
