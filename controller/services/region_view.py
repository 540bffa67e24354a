"""The region at a glance, for the console's Region page and the CLI: each centre with the capacity split
the compiler made (controller.capacity), the calendars the tables carry (DESIGN §5a: `region` for the
region-wide holidays, one per city), and menus with their service and city named."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.compiler import Region
from controller.models import City, Holiday, Service
from controller.services import menus
from controller.services.errors import FieldError
from controller.services.region import REGION_CALENDAR, rows


def centres(s: Session) -> list[dict]:
    """Every centre with its split: `shares` (gateway -> max_calls), `peaks` and a warning, or no split
    when it has no capacity or no gateway dials it."""
    splits = Region(s).splits()
    out = []
    for c in rows(s, "centres"):
        sp = splits.get(c.code)
        out.append({"id": c.id, "code": c.code, "name": c.name, "number": c.number, "capacity": c.capacity,
                    "ring_timeout_s": c.ring_timeout_s, "shares": dict(sorted(sp.shares.items())) if sp else {},
                    "peaks": dict(sorted(sp.peaks.items())) if sp else {}, "warning": sp.warning if sp else None})
    return out


def calendars(s: Session) -> list[dict]:
    """The region's calendar, then each city's (by name), each with its holidays (id and date), oldest first."""
    days: dict[int | None, list[dict]] = {}
    for h in s.scalars(select(Holiday).order_by(Holiday.date)):
        days.setdefault(h.city_id, []).append({"id": h.id, "date": h.date})
    out = [{"calendar": REGION_CALENDAR, "city_id": None, "holidays": days.get(None, [])}]
    for c in s.scalars(select(City).order_by(City.name)):
        out.append({"calendar": c.name, "city_id": c.id, "holidays": days.get(c.id, [])})
    return out


def calendar_city(s: Session, calendar: str) -> int | None:
    """The city_id a calendar's holidays carry: None for `region`, else the city of that name."""
    if calendar == REGION_CALENDAR:
        return None
    city_id = s.scalar(select(City.id).where(City.name == calendar))
    if city_id is None:
        raise FieldError("holidays.calendar", f"no calendar {calendar[:64]!r}: `{REGION_CALENDAR}` or a city's name")
    return city_id


def menu_rows(s: Session) -> list[dict]:
    """Menus with the service's number and the city's name (or every city) shown."""
    services = {sv.id: sv for sv in s.scalars(select(Service))}
    cities = {c.id: c.name for c in s.scalars(select(City))}
    out = []
    for m in menus.list_menus(s):
        sv = services.get(m.service_id)
        out.append({**menus.as_dict(m), "service": f"{sv.number} {sv.name}" if sv else str(m.service_id),
                    "city": cities.get(m.city_id, "every city") if m.city_id else "every city"})
    return out
