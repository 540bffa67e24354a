"""A service's year on one page (the 122 line's yearly report) and its milestones (the 100,000th caller).

A service's calls are those that came in on a port serving it (gateway_services: gateway and port); the
year is the region's local calendar year, its months, days and hours local too. Counted from the call
records, in SQL, one query per stretch of constant UTC offset. No figure here can come from the hourly,
daily or monthly aggregates (call_hours, call_days, call_months) and stay exact: they are kept per gateway,
route and centre, not per port, so they cannot tell one service's calls from another's on a gateway that
serves several (nor count a call that matched no route by its port), and the service level needs each
call's ring seconds, of which they keep only the sum.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, and_, case, func, literal, select
from sqlalchemy.orm import Session

from controller.models import City, Gateway, GatewayService, OutboundCall, Record, Service
from controller.services.errors import FieldError, NotFound
from controller.services.report_local import (
    DEFAULT_WITHIN_S,
    MAX_WITHIN_S,
    finish,
    local_start,
    region_zone,
    spans,
)
from controller.services.times import utc_text

YEARS = (2000, 2099)
MAX_EVERY = 10**9
MAX_MILESTONES = 1000
COUNTED = ("offered", "answered", "abandoned", "callback", "within", "talk_s")


def services(s: Session) -> list[tuple[str, str]]:
    """[(number, name)] of every service, by number (the year page's choice)."""
    return [(n, name) for n, name in s.execute(select(Service.number, Service.name).order_by(Service.number))]


def service_of(s: Session, number) -> Service:
    """The service a citizen dials, by its number (or name); 422 for a value no service could have."""
    if not isinstance(number, str) or not 1 <= len(number) <= 128 or not number.isprintable():
        raise FieldError("service", "a service number such as 122 (1 to 128 characters)")
    svc = s.scalars(select(Service).where(Service.number == number)).first()
    svc = svc or s.scalars(select(Service).where(Service.name == number)).first()
    if svc is None:
        raise NotFound("service", f"no service {number!r}")
    return svc


def check_within(within_s) -> int:
    if type(within_s) is not int or not 1 <= within_s <= MAX_WITHIN_S:
        raise FieldError("within_s", f"whole seconds from 1 to {MAX_WITHIN_S}")
    return within_s


def _service_calls(q, service_id: int):
    """The call records that came in on a port serving the service (with their city)."""
    return (q.select_from(Record)
            .join(GatewayService, and_(GatewayService.gateway_id == Record.gateway_id,
                                       GatewayService.port == Record.port, GatewayService.service_id == service_id))
            .outerjoin(Gateway, Gateway.id == Record.gateway_id).outerjoin(City, City.id == Gateway.city_id)
            .where(Record.kind == "call", Record.at.is_not(None)))


def _counts(within_s: int) -> list:
    answered = Record.outcome == "answered"
    return [func.count().label("offered"), func.sum(case((answered, 1), else_=0)).label("answered"),
            func.sum(case((Record.outcome == "abandoned", 1), else_=0)).label("abandoned"),
            func.sum(case((Record.outcome == "callback", 1), else_=0)).label("callback"),
            func.sum(case((answered & (Record.ring_s <= within_s), 1), else_=0)).label("within"),
            func.coalesce(func.sum(Record.talk_s), 0).label("talk_s")]


def _add(into: dict, row) -> None:
    for c in COUNTED:
        into[c] = into.get(c, 0) + int(row[c] or 0)


def _busiest(rows: dict[str, dict]) -> dict | None:
    """The period with the most calls offered (the earliest of equals); None without calls."""
    best = max(rows.values(), key=lambda r: (r["offered"], [-ord(ch) for ch in r["period"]]), default=None)
    return None if best is None or not best["offered"] else {"period": best["period"], "offered": best["offered"]}


def year_figures(s: Session, service, year, within_s: int = DEFAULT_WITHIN_S) -> dict:
    """{service, year, zone, within_s, from, to, totals, months, cities, busiest: {month, day, hour},
    callbacks: {requested, placed, reached}}: the key figures of a service's local calendar year."""
    if type(year) is not int or not YEARS[0] <= year <= YEARS[1]:
        raise FieldError("year", f"a year from {YEARS[0]} to {YEARS[1]}")
    check_within(within_s)
    svc = service_of(s, service)
    tz = region_zone(s)
    lo, hi = local_start(date(year, 1, 1), tz), local_start(date(year + 1, 1, 1), tz)
    months = {f"{year}-{m:02d}": {"period": f"{year}-{m:02d}", **dict.fromkeys(COUNTED, 0)} for m in range(1, 13)}
    days: dict[str, dict] = {}
    hours = {h: {"period": f"{h:02d}:00", **dict.fromkeys(COUNTED, 0)} for h in range(24)}
    cities: dict[str, dict] = {}
    for a, b, off in spans(lo, hi, tz):
        moved = Record.at + literal(off, BigInteger, literal_execute=True)
        day = ((moved // 86400) * 86400).label("day")
        hour = ((moved % 86400) // 3600).label("hour")
        window = (Record.at >= a, Record.at < b)
        q = _service_calls(select(City.name.label("city"), day, *_counts(within_s)), svc.id).where(*window)
        for r in s.execute(q.group_by(City.name, day)).mappings():
            name = datetime.fromtimestamp(int(r["day"]), UTC).strftime("%Y-%m-%d")
            _add(days.setdefault(name, {"period": name}), r)
            if name[:7] in months:
                _add(months[name[:7]], r)
            city = r["city"] or "(no city)"
            _add(cities.setdefault(city, {"key": city}), r)
        q = _service_calls(select(hour, *_counts(within_s)), svc.id).where(*window)
        for r in s.execute(q.group_by(hour)).mappings():
            _add(hours[int(r["hour"]) % 24], r)
    totals = finish({c: sum(m[c] for m in months.values()) for c in COUNTED})
    placed, reached = s.execute(_service_calls(select(
        func.count(OutboundCall.id), func.sum(case((OutboundCall.outcome == "answered", 1), else_=0))), svc.id)
        .join(OutboundCall, OutboundCall.callback_id == Record.id)
        .where(OutboundCall.created_at >= lo, OutboundCall.created_at < hi)).one()
    return {"service": {"number": svc.number, "name": svc.name}, "year": year, "zone": str(tz), "within_s": within_s,
            "from": lo, "to": hi, "totals": totals, "months": [finish(m) for m in months.values()],
            "cities": [finish(cities[k]) for k in sorted(cities)],
            "busiest": {"month": _busiest(months), "day": _busiest(days), "hour": _busiest(
                {str(h): r for h, r in hours.items()})},
            "hours": [finish(r) for r in hours.values()],
            "callbacks": {"requested": totals["callback"], "placed": int(placed or 0), "reached": int(reached or 0)}}


def milestones(s: Session, service, every, limit: int = 100, answered: bool = False, before: int | None = None,
               since: int | None = None) -> dict:
    """Every `every`-th call of the service since its first (the 100,000th caller...), oldest first: which
    call it was (time, city, gateway, port, outcome; never the caller's number). `answered`: count answered
    calls only. `before`: count only calls that started before this UTC second; `since`: list only the
    milestones reached from this UTC second on (still counted from the first call). At most `limit`."""
    if type(every) is not int or not 1 <= every <= MAX_EVERY:
        raise FieldError("every", f"a whole number from 1 to {MAX_EVERY}")
    if type(limit) is not int or not 1 <= limit <= MAX_MILESTONES:
        raise FieldError("limit", f"from 1 to {MAX_MILESTONES}")
    svc = service_of(s, service)
    tz = region_zone(s)
    n = func.row_number().over(order_by=(Record.at, Record.id)).label("n")
    base = _service_calls(select(n, Record.id, Record.at, Record.gateway_id, Record.port, Record.outcome,
                                 City.name.label("city")), svc.id)
    if answered:
        base = base.where(Record.outcome == "answered")
    if before is not None:
        base = base.where(Record.at < before)
    sub = base.subquery()
    calls = s.scalar(select(func.count()).select_from(sub)) or 0
    q = select(sub).where(sub.c.n % literal(every, BigInteger, literal_execute=True) == 0)
    if since is not None:
        q = q.where(sub.c.at >= since)
    rows = s.execute(q.order_by(sub.c.n).limit(limit)).mappings()
    out = []
    for r in rows:
        at = int(r["at"])
        try:
            local = datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M:%S") if utc_text(at) else None
        except (ValueError, OverflowError, OSError):  # a stored start at the edge of what a date can be
            local = None
        out.append({"n": int(r["n"]), "id": int(r["id"]), "at": at, "utc": utc_text(at), "local": local,
                    "city": r["city"], "gateway": r["gateway_id"], "port": r["port"], "outcome": r["outcome"]})
    return {"service": {"number": svc.number, "name": svc.name}, "every": every, "counted": "answered" if answered
            else "offered", "calls": int(calls), "reached": int(calls) // every, "zone": str(tz), "milestones": out}
