"""Call counts per city, gateway, route, target or menu option and UTC hour or day: the numbers behind the
reports API, the CLI and the console's Reports page (one place that counts).

Summed in SQL from the hourly aggregates the bridge keeps (`CallHour`) when the window starts and ends on
whole hours, for day and month buckets from the daily ones (`CallDay`, kept equal to the hours by triggers)
over the window's whole days, and for month buckets from the monthly ones (`CallMonth`, the same) over its
whole UTC months, else counted from the call records themselves (`at` = call start, UTC seconds); all give
the same figures. Buckets are UTC time made by integer division, which SQLite and PostgreSQL agree on;
months of days are named in SQL (`_months`) or summed in Python (`by_month`), local periods from hours by
the page that needs them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, case, cast, func, literal, select

from controller.models import CallDay, CallHour, CallMonth, City, Gateway, Record
from controller.services.report_parts import DATE_MAX, FIRST_DAY, month_bucket, plan
from controller.services.times import parse_time, utc_text
from protocols.messages import HOUR_COUNTS, OUTCOMES

COUNTS = HOUR_COUNTS[:-1]  # ring_s is kept, not reported
GROUPS = {"gateway": Record.gateway_id, "route": Record.route, "target": Record.target, "city": City.name,
          "option": Record.option}
SECONDS = {"hour": 3600, "day": 86400, "month": 86400}


def finish(row: dict) -> dict:
    """Counts -> counts and ratios (answered and abandoned per offered call; talk per answered call; with
    `within`, the service level: calls answered within the threshold per offered call)."""
    offered, answered = row["offered"], row["answered"]
    row["answer_ratio"] = round(answered / offered, 4) if offered else None
    row["abandon_ratio"] = round(row["abandoned"] / offered, 4) if offered else None
    row["avg_talk_s"] = round(row["talk_s"] / answered, 1) if answered else None
    if "within" in row:
        row["service_level"] = round(row["within"] / offered, 4) if offered else None
    return row


def counted(s, group: str, interval: str, lo: int | None, hi: int | None, route: str | None = None,
            city: str | None = None, shift: int = 0, within_s: int | None = None) -> list[dict]:
    """Rows {key, start, offered, <outcomes>, talk_s[, within]} per group and UTC hour, day or month (`cells`
    as dicts)."""
    names = ("key", "start", *columns(within_s))
    return [dict(zip(names, r, strict=True)) for r in cells(s, group, interval, lo, hi, route, city, shift, within_s)]


def columns(within_s: int | None) -> tuple[str, ...]:
    """The counted columns of a row, after its key and start."""
    return COUNTS if within_s is None else (*COUNTS, "within")


def cells(s, group: str, interval: str, lo: int | None, hi: int | None, route: str | None = None,
          city: str | None = None, shift: int = 0, within_s: int | None = None) -> list[tuple]:
    """Tuples (key, start, offered, <outcomes>, talk_s[, within]) per group and UTC hour, day or month, in no
    order: summed from the aggregates when the window is whole hours, else counted from the call records (and
    always for menu options, which the aggregates do not keep). `city`: only that city's gateways' calls.
    `shift`: seconds added to every time before bucketing (a zone's UTC offset over a window where it
    holds: buckets of local wall time, `start` in wall seconds). `within_s`: also `within`, the calls
    answered within that many seconds of ringing (the service level's numerator; counted from the records,
    since the aggregates keep only the sum of ring seconds). Tuples, not dicts: a day by gateway and hour
    is 24,000 of them, and the report makes its own rows once.

    Day and month buckets in UTC read the daily aggregates (`CallDay`) for the whole days of the window
    and the hourly ones only for the hours of the partial days at its edges; month buckets read the
    monthly aggregates (`CallMonth`) for the window's whole months, and a partly covered month as its
    days and hours inside the window or as its month row less those outside (`report_parts.plan`): the
    same sums, as triggers keep every day and month row equal to its hours."""
    if within_s is not None or group == "option" or not all(t is None or t % 3600 == 0 for t in (lo, hi)):
        rows = _summed(s, _records(group, within_s), group, interval, lo, hi, route, city, shift, within_s)
        return _by_month(rows) if interval == "month" else rows
    if interval == "hour" or shift:
        rows = _summed(s, _hours(group), group, interval, lo, hi, route, city, shift)
        return _by_month(rows) if interval == "month" else rows
    sources = {"hours": _hours(group), "days": _days(group), "months": _month_rows(group)}
    parts = plan(lo, hi, interval)
    if len(parts) == 1 and (interval == "day" or parts[0].rows == "months"):
        # one query whose GROUP BY makes each key and bucket once, every one holding hours: the rows as read
        part = parts[0]
        by = CallMonth.month if part.rows == "months" else None
        return _summed(s, sources[part.rows], group, interval, part.lo, part.hi, route, city, by=by)
    merged: dict[tuple, list] = {}
    for part in parts:
        by = None
        if part.rows == "months":
            by = CallMonth.month  # a month row's key is its bucket
        elif part.rows == "days" and interval == "month":
            by = _months(s, part.lo, part.hi)
        for r in _summed(s, sources[part.rows], group, interval, part.lo, part.hi, route, city, by=by, held=True):
            start = month_bucket(r[1]) if interval == "month" and by is None else r[1]
            cell = merged.get((r[0], start))
            if cell is None:
                merged[(r[0], start)] = [r[0], start, *(part.sign * v for v in r[2:])]
                continue
            for i in range(2, len(r)):
                cell[i] += part.sign * r[i]
    # a key and bucket whose every hour row was taken away again (a month less its days outside the window)
    return [tuple(cell[:-1]) for cell in merged.values() if cell[-1]]


MAX_MONTHS = 1200  # more (a window of a hundred years) and the days go up one by one, by_month sums them


def _months(s, first: int, end: int | None):
    """A CASE naming each whole day of [first, end) by the UTC month it falls in (`by_month` would sum
    365 day rows a year per key in Python: most of a year's report by gateway); None for no day or too
    many months. An open end stops at the last day held."""
    if end is None:
        end = s.scalar(select(func.max(CallDay.day)).where(CallDay.day >= first))
        if end is None:
            return None
        end += 86400
    if end - 86400 > DATE_MAX:  # a stored start that is no date (it may be the largest BIGINT)
        return None
    if first == FIRST_DAY:  # open start: from the first day held
        first = s.scalar(select(func.min(CallDay.day)).where(CallDay.day >= first, CallDay.day < end))
        if first is None:
            return None
    t, last = datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(end - 86400, UTC)
    starts = []
    for month in range(t.year * 12 + t.month - 1, last.year * 12 + last.month):
        starts.append(int(datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC).timestamp()))
        if len(starts) > MAX_MONTHS:
            return None
    # each WHEN: before the next month's first day (the last one's: the window's end); never a bare
    # constant, which GROUP BY would read as a column's position
    return case(*((CallDay.day < nxt, literal(m, BigInteger, literal_execute=True))
                  for m, nxt in zip(starts, [*starts[1:], end], strict=True)),
                else_=literal(starts[-1], BigInteger, literal_execute=True))


class Source(NamedTuple):
    """What one report query reads: the call records, or the hourly, daily or monthly aggregates."""
    at: Any  # the time column
    gateway: Any
    key: Any  # the group's column
    where: list
    cols: list  # the counted columns
    route: Any
    held: Any = None  # how many hour rows the aggregate rows sum (the hours' count, the days' and months' sum)


def _records(group: str, within_s: int | None) -> Source:
    """The call records as a Source (counted row by row)."""
    cols = [func.count().label("offered")]
    cols += [func.sum(case((Record.outcome == o, 1), else_=0)).label(o) for o in OUTCOMES]
    cols.append(func.coalesce(func.sum(Record.talk_s), 0).label("talk_s"))
    if within_s is not None:
        cols.append(func.sum(case(((Record.outcome == "answered") & (Record.ring_s <= within_s), 1),
                                  else_=0)).label("within"))
    return Source(Record.at, Record.gateway_id, GROUPS[group], [Record.kind == "call", Record.at.is_not(None)], cols,
                  Record.route)


def _aggregate(table, at, group: str) -> Source:
    key = {"gateway": table.gateway_id, "route": func.nullif(table.route, ""),
           "target": func.nullif(table.target, ""), "city": City.name}[group]
    # sums as BIGINT: PostgreSQL's sum of a BIGINT column is NUMERIC, which the driver reads as Decimal at a
    # few times the cost (a year by gateway is 12,000 rows); SQLite's sums are 64-bit integers anyway
    cols = [cast(func.sum(getattr(table, c)), BigInteger).label(c) for c in COUNTS]
    held = func.count() if table is CallHour else cast(func.sum(table.hours), BigInteger)
    return Source(at, table.gateway_id, key, [], cols, table.route, held.label("held"))


def _hours(group: str) -> Source:
    return _aggregate(CallHour, CallHour.hour, group)


def _days(group: str) -> Source:
    return _aggregate(CallDay, CallDay.day, group)


def _month_rows(group: str) -> Source:
    return _aggregate(CallMonth, CallMonth.month, group)


def _summed(s, source: Source, group: str, interval: str, lo: int | None, hi: int | None, route: str | None,
            city: str | None, shift: int = 0, within_s: int | None = None, by=None, held: bool = False) -> list[tuple]:
    """One query of `source` (_records, _hours, _days or _month_rows) over [lo, hi): tuples (key, bucket,
    counts...[, within][, held]) per key and bucket (`by`: the bucket's expression, else hours or days by
    integer division)."""
    at = source.at
    size = literal(SECONDS[interval], BigInteger, literal_execute=True)
    moved = at + literal(shift, BigInteger, literal_execute=True) if shift else at
    bucket = ((moved // size) * size if by is None else by).label("bucket")
    key = source.key.label("key")
    q = select(key, bucket, *source.cols, *([source.held] if held else [])).where(*source.where)
    if group == "city" or city is not None:
        q = q.outerjoin(Gateway, Gateway.id == source.gateway).outerjoin(City, City.id == Gateway.city_id)
    if city is not None:
        q = q.where(City.name == city)
    if lo is not None:
        q = q.where(at >= lo)
    if hi is not None:
        q = q.where(at < hi)
    if route is not None:
        q = q.where(source.route == route)
    # the driver's own tuples: SQLAlchemy's Row objects cost about as much again as the fetch (24,000 rows)
    result = s.connection().execute(q.group_by(key, bucket))
    rows = result.cursor.fetchall()
    result.close()
    if source.held is not None:  # the aggregates' sums: BIGINTs of NOT NULL columns, already ints
        return rows
    return [(r[0], int(r[1]), *[int(v or 0) for v in r[2:]]) for r in rows]


def by_month(rows: list[dict]) -> list[dict]:
    """Day rows (dicts) -> UTC month rows (a day that is no date stays its own bucket)."""
    if not rows:
        return []
    names = tuple(rows[0])
    return [dict(zip(names, r, strict=True)) for r in _by_month([tuple(r.values()) for r in rows])]


def _by_month(rows: list[tuple]) -> list[tuple]:
    """Day tuples (key, start, counts...) -> UTC month tuples (a day that is no date stays its own bucket)."""
    months: dict[tuple, list] = {}
    for r in rows:
        start = month_bucket(r[1])
        m = months.get((r[0], start))
        if m is None:
            months[(r[0], start)] = [r[0], start, *r[2:]]
            continue
        for i in range(2, len(r)):
            m[i] += r[i]
    return [tuple(m) for m in months.values()]


def city_zones(s) -> dict[str, str]:
    """Every city's IANA zone, by name (the Reports page counts in the region's local time)."""
    return {name: zone for name, zone in s.execute(select(City.name, City.zone).order_by(City.name))}


PERIOD = {"hour": "%Y-%m-%dT%H:00Z", "day": "%Y-%m-%d", "month": "%Y-%m"}


def period(start: int, interval: str) -> str | None:
    """The period's name; null for a bucket that is no date (stored calls may carry any start time)."""
    return utc_text(start, PERIOD[interval])


def call_report_data(s, group: str, interval: str, from_: int | str | None = None, to: int | str | None = None,
                     route: str | None = None, within_s: int | None = None) -> dict:
    """The call report (the API's `GET /reports/calls`, `citygate report calls`): {group, interval, from, to,
    rows, totals}; `from_`/`to` UTC seconds or ISO-8601 (FieldError naming them); with `within_s`
    also `within` and `service_level` in each row. Rows by start, then key as text; totals by key as text."""
    lo, hi = parse_time(from_, "from"), parse_time(to, "to")
    by_start: dict[int, list[tuple]] = {}  # rows by bucket, sorted per bucket: a sort of 24 lists of 1,000
    per_key: dict = {}
    for r in cells(s, group, interval, lo, hi, route, within_s=within_s):
        mine = by_start.get(r[1])
        if mine is None:
            mine = by_start[r[1]] = []
        mine.append(r)
        mine = per_key.get(r[0])
        if mine is None:
            mine = per_key[r[0]] = []
        mine.append(r)
    text_key = itemgetter(0) if all(type(k) is str for k in per_key) else (lambda r: str(r[0]))
    ordered = [r for start in sorted(by_start) for r in sorted(by_start[start], key=text_key)]
    names = columns(within_s)
    # each key's column sums in C (zip(*) of its rows), less the key and start columns
    totals = [finish({"key": k, **dict(zip(names, map(sum, list(zip(*per_key[k], strict=True))[2:]), strict=True))})
              for k in sorted(per_key, key=str)]
    named = {start: period(start, interval) for start in by_start}  # a period's name once per bucket
    if within_s is None:
        rows = _rows(ordered, named)
    else:
        rows = [finish({**dict(zip(("key", "start", *names), r, strict=True)), "period": named[r[1]]})
                for r in ordered]
    return {"group": group, "interval": interval, "from": lo, "to": hi, "within_s": within_s, "rows": rows,
            "totals": totals}


ROW = ("offered", "answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied", "talk_s")
if COUNTS != ROW:  # _rows names them one by one
    raise ImportError(f"protocols.messages.HOUR_COUNTS changed: {COUNTS}; write _rows' columns anew")


def _rows(ordered: list[tuple], named: dict[int, str | None]) -> list[dict]:
    """The report's rows as `finish` makes them, in one dict display each (24,000 rows by gateway and hour:
    a dict made from a zip and then given its ratios one by one takes half as long again)."""
    return [{"key": key, "start": start, "offered": offered, "answered": answered, "abandoned": abandoned,
             "failed": failed, "rejected": rejected, "after_hours": after_hours, "callback": callback,
             "denied": denied, "talk_s": talk_s, "period": named[start],
             "answer_ratio": round(answered / offered, 4) if offered else None,
             "abandon_ratio": round(abandoned / offered, 4) if offered else None,
             "avg_talk_s": round(talk_s / answered, 1) if answered else None}
            for key, start, offered, answered, abandoned, failed, rejected, after_hours, callback, denied, talk_s
            in ordered]
