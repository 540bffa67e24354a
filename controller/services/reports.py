"""Call counts per city, gateway, route, target or menu option and UTC hour or day: the numbers behind the
reports API, the CLI and the console's Reports page (one place that counts).

Summed in SQL from the hourly aggregates the bridge keeps (`CallHour`) when the window starts and ends on
whole hours, else counted from the call records themselves (`at` = call start, UTC seconds); both give the
same figures. Buckets are UTC time made by integer division, which SQLite and PostgreSQL agree on; months
are summed from days (`by_month`), local periods from hours by the page that needs them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, case, func, literal, select

from controller.models import CallHour, City, Gateway, Record
from controller.services.times import parse_time, utc_text
from protocols.messages import HOUR_COUNTS, OUTCOMES

COUNTS = HOUR_COUNTS[:-1]  # ring_s is kept, not reported
GROUPS = {"gateway": Record.gateway_id, "route": Record.route, "target": Record.target, "city": City.name,
          "option": Record.option}
HOURLY = {"gateway": CallHour.gateway_id, "route": func.nullif(CallHour.route, ""),
          "target": func.nullif(CallHour.target, ""), "city": City.name}
SECONDS = {"hour": 3600, "day": 86400, "month": 86400}
DATE_MIN, DATE_MAX = -62135596800, 253402300799  # what datetime can name (years 1 to 9999)


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
    """Rows {key, start, offered, <outcomes>, talk_s} per group and UTC hour/day: summed from the
    hourly aggregates when the window is whole hours, else counted from the call records (and always
    for menu options, which the aggregates do not keep). `city`: only that city's gateways' calls.
    `shift`: seconds added to every time before bucketing (a zone's UTC offset over a window where it
    holds: buckets of local wall time, `start` in wall seconds). `within_s`: also `within`, the calls
    answered within that many seconds of ringing (the service level's numerator; counted from the records,
    since the aggregates keep only the sum of ring seconds)."""
    if within_s is None and group != "option" and all(t is None or t % 3600 == 0 for t in (lo, hi)):
        at, gateway, key, where = CallHour.hour, CallHour.gateway_id, HOURLY[group], []
        cols = [func.sum(getattr(CallHour, c)).label(c) for c in COUNTS]
    else:
        at, gateway, key = Record.at, Record.gateway_id, GROUPS[group]
        where = [Record.kind == "call", Record.at.is_not(None)]
        cols = [func.count().label("offered")]
        cols += [func.sum(case((Record.outcome == o, 1), else_=0)).label(o) for o in OUTCOMES]
        cols.append(func.coalesce(func.sum(Record.talk_s), 0).label("talk_s"))
        if within_s is not None:
            cols.append(func.sum(case(((Record.outcome == "answered") & (Record.ring_s <= within_s), 1),
                                      else_=0)).label("within"))
    size = literal(SECONDS[interval], BigInteger, literal_execute=True)
    moved = at + literal(shift, BigInteger, literal_execute=True) if shift else at
    bucket = ((moved // size) * size).label("bucket")
    key = key.label("key")
    q = select(key, bucket, *cols).where(*where)
    if group == "city" or city is not None:
        q = q.outerjoin(Gateway, Gateway.id == gateway).outerjoin(City, City.id == Gateway.city_id)
    if city is not None:
        q = q.where(City.name == city)
    if lo is not None:
        q = q.where(at >= lo)
    if hi is not None:
        q = q.where(at < hi)
    if route is not None:
        q = q.where((CallHour.route if at is CallHour.hour else Record.route) == route)
    rows = s.execute(q.group_by(key, bucket)).mappings()
    names = COUNTS if within_s is None else (*COUNTS, "within")
    return [{"key": r["key"], "start": int(r["bucket"]), **{c: int(r[c] or 0) for c in names}} for r in rows]


def by_month(rows: list[dict]) -> list[dict]:
    """Day rows -> UTC month rows (a day that is no date stays its own bucket)."""
    months: dict[tuple, dict] = {}
    for r in rows:
        start = r["start"]
        if DATE_MIN <= start <= DATE_MAX:
            t = datetime.fromtimestamp(start, UTC)
            start = int(datetime(t.year, t.month, 1, tzinfo=UTC).timestamp())
        names = COUNTS if "within" not in r else (*COUNTS, "within")
        m = months.setdefault((r["key"], start), {"key": r["key"], "start": start, **dict.fromkeys(names, 0)})
        for c in names:
            m[c] += r[c]
    return list(months.values())


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
    also `within` and `service_level` in each row."""
    lo, hi = parse_time(from_, "from"), parse_time(to, "to")
    rows = counted(s, group, interval, lo, hi, route, within_s=within_s)
    names = COUNTS if within_s is None else (*COUNTS, "within")
    if interval == "month":
        rows = by_month(rows)
    rows.sort(key=lambda r: (r["start"], str(r["key"])))
    totals: dict = {}
    for r in rows:
        t = totals.setdefault(r["key"], {"key": r["key"], **dict.fromkeys(names, 0)})
        for c in names:
            t[c] += r[c]
    for r in rows:
        r["period"] = period(r["start"], interval)
        finish(r)
    return {"group": group, "interval": interval, "from": lo, "to": hi, "within_s": within_s, "rows": rows,
            "totals": [finish(t) for t in sorted(totals.values(), key=lambda t: str(t["key"]))]}
