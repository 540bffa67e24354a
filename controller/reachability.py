"""Which routes of a table another route keeps from its calls, and when.

The decision picks one route per call (DESIGN §5 step 2: longest caller prefix, a named port
over "*", then the earlier route; §5a: a closed route with `after_hours: next` steps aside).
A route that is never picked while it is in effect is dead configuration, usually a mistake
(a night route listed first whose after-hours action swallows every daytime call); one picked
only part of the time is worth a warning that says when. This runs the table's own decision
code at every instant where some route's opening hours change, over one week from each date a
route comes into effect, and on the table's closed dates: exact for opening hours, since the
decision cannot change between those instants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols import routeset, routing, tz

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_CLOSED_DATES = 8  # closed dates sampled per table (they all behave alike)


@dataclass
class Shadow:
    """`route` (index `index` in the table) loses calls it would take to `by` at `when`."""
    route: str
    index: int
    by: list[str]
    when: str
    never: bool  # never picked while in effect: the route is unreachable
    samples: int = field(default=0, repr=False)

    def message(self) -> str:
        takers = " and ".join(self.by)
        if self.never:
            return (f"route {self.route} is never reached: {takers} takes every call it would get (give "
                    f"{takers} hours with after_hours next, or remove one of them)")
        return f"route {self.route} does not get its calls {self.when}: {takers} takes them"


def open_minutes(hours: list[dict] | None) -> int:
    """Minutes a week that configured hours ([{"days", "start", "end"}]) are open; no hours: always."""
    if not hours:
        return 7 * 1440
    total = 0
    for w in hours:
        try:
            days = len(set(str(w.get("days", ""))))
            (sh, sm), (eh, em) = (map(int, str(w[k]).split(":")) for k in ("start", "end"))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # the table's validator names what is wrong with it
        start, end = sh * 60 + sm, eh * 60 + em
        total += days * (end - start if start <= end else 1440 - start + end)
    return total


def specific_first(route) -> tuple:
    """Sort key for a city's routes of one service: fewer open minutes a week first, then the later
    `valid_from`, then the row id (stable)."""
    return (open_minutes(route.hours), -(route.valid_from or 0), route.id)


def default_after_hours(s, city_id: int, service_id: int, caller: list[str] | None, hours) -> dict | None:
    """What a new time-limited route does out of its hours when none is given: `next` (DESIGN §5a) when
    other routes serve the same city, service and callers, so it yields to them; else None (reject)."""
    from sqlalchemy import select

    from controller.models import Route

    if not hours:
        return None
    same = sorted(caller or [])
    for other in s.scalars(select(Route).where(Route.city_id == city_id, Route.service_id == service_id)):
        if sorted(other.caller or []) == same:
            return {"action": "next"}
    return None


def closed_dates(*tables: routing.Table) -> list[str]:
    """Every date any route of these tables is closed on: the tables' `closed` and the routes' calendars."""
    dates = set()
    for t in tables:
        dates.update(t.closed or ())
        for r in t.routes:
            dates.update(r.closed or ())
    return sorted(dates)


def instants(table: routing.Table) -> list[tuple[int, str, int, int]]:
    """(UTC instant, day, first minute, end minute) for every stretch of constant opening hours: over a
    week from each date a route comes into effect (day 'Mon'..'Sun') and on the closed dates (day
    'YYYY-MM-DD')."""
    marks = {0}
    for r in table.routes:
        for _mask, start, end in r.hours or ():
            marks.update(m for m in (start, end) if m < 1440)
    minutes = sorted(marks)
    spans = list(zip(minutes, minutes[1:] + [1440], strict=True))
    anchors = {table.issued_at} | {r.start for r in table.routes if r.start is not None}
    out = []
    for anchor in sorted(anchors):
        lt = tz.localtime(anchor, table.tz)
        midnight = tz.days_from_civil(lt[0], lt[1], lt[2]) * 86400
        for day in range(8):  # the anchor's day again a week later: its hours before the anchor
            for first, end in spans:
                t = tz.utc_from_local(midnight + day * 86400 + first * 60, table.tz)
                if t >= anchor:
                    out.append((t, DAY_NAMES[tz.localtime(t, table.tz)[6] - 1], first, end))
    for date in closed_dates(table)[:MAX_CLOSED_DATES]:
        y, mo, d = int(date[:4]), int(date[5:7]), int(date[8:10])
        for first, end in spans:
            at = tz.utc_from_local(tz.days_from_civil(y, mo, d) * 86400 + first * 60, table.tz)
            out.append((at, date, first, end))
    return out


def _callers(route) -> list[str]:
    """Callers that reach `route` with no route of a longer prefix in the way: its prefixes themselves,
    or no caller id at all for a route open to every caller."""
    return list(route.caller) if route.caller else [""]


def _in_effect(route, t: int) -> bool:
    return (route.start is None or t >= route.start) and (route.until is None or t < route.until)


def _steps_aside(table, route, t: int) -> bool:
    """Closed at `t` with after_hours next: not picking it then is the table's intent."""
    if route.after_hours[0] != "next":
        return False
    lt = tz.localtime(t, table.tz)
    dates = table.closed if route.closed is None else route.closed
    if dates and tz.date_str(lt) in dates:
        return True
    hours = route.rest[routeset.HOURS]  # packed, as the gateway reads it
    return hours is not None and not routing._open(hours, lt)


def shadows(table: routing.Table) -> list[Shadow]:
    """Every route that another takes calls from while it is in effect, with when."""
    samples = instants(table)
    found = []
    for index, route in enumerate(table.routes):
        # a "*" route serves the ports no route names (a named port beating it is the contract's rule)
        port = route.port if route.port != "*" else _unnamed_port(table)
        wanted = lost = 0
        by: list[str] = []
        lost_at: list[tuple[str, int, int]] = []
        for t, day, first, end in samples:
            if not _in_effect(route, t) or _steps_aside(table, route, t):
                continue
            for caller in _callers(route):
                wanted += 1
                d = routing.decide(table, port, caller, t)
                if d.route != route.id and d.route is not None:
                    lost += 1
                    if d.route not in by:
                        by.append(d.route)
                    if (day, first, end) not in lost_at:
                        lost_at.append((day, first, end))
        if lost:
            found.append(Shadow(route.id, index, by, when(lost_at), lost == wanted, lost))
    return found


def _unnamed_port(table: routing.Table) -> str:
    named = {r.port for r in table.routes}
    return next(p for p in ("zz", "zzz", "zzzz", "zzzzz") if p not in named)


def when(spans: list[tuple[str, int, int]]) -> str:
    """[('Mon', 0, 360), ('Mon', 1320, 1440), ...] -> 'every day 00:00-06:00, 22:00-24:00'."""
    by_day: dict[str, list[tuple[int, int]]] = {}
    for day, first, end in spans:
        ranges = by_day.setdefault(day, [])
        if ranges and ranges[-1][1] == first:
            ranges[-1] = (ranges[-1][0], end)
        elif (first, end) not in ranges:
            ranges.append((first, end))
    groups: dict[str, list[str]] = {}
    for day in [d for d in DAY_NAMES if d in by_day] + sorted(d for d in by_day if d not in DAY_NAMES):
        text = ", ".join("%02d:%02d-%02d:%02d" % (a // 60, a % 60, b // 60, b % 60) for a, b in sorted(by_day[day]))
        groups.setdefault(text, []).append(day)
    parts = []
    for text, days in groups.items():
        weekdays = [d for d in days if d in DAY_NAMES]
        dates = [d for d in days if d not in DAY_NAMES]
        label = "every day" if len(weekdays) == 7 else ",".join(weekdays)
        if dates:
            label = (label + " and " if weekdays else "") + "on " + ", ".join(dates)
        parts.append(f"{label} {text}")
    return "; ".join(parts)


def table_warnings(body: str | bytes) -> list[str]:
    """The shadow messages of a stored table body (a body that does not load has none to give)."""
    try:
        table = routing.load(body)
    except routing.TableError:
        return []
    return [f"{table.gateway}: {sh.message()}" for sh in shadows(table)]
