"""Call reports: outcome counts and ratios per city, gateway, route or target, per hour, day or month.

Summed in SQL from the hourly aggregates the bridge keeps (`CallHour`) when the window starts and
ends on whole hours, else counted from the call records themselves (`at` = call start, UTC seconds);
both give the same figures. Hours and days are buckets of UTC time made by integer division, which
SQLite and PostgreSQL agree on; months are summed from days.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import BigInteger, case, func, literal, select

from controller.api.deps import Reader, SessionDep
from controller.api.routes.common import parse_time
from controller.models import CallHour, City, Gateway, Record

router = APIRouter(prefix="/reports", tags=["reports"])
OUTCOMES = ("answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied")
COUNTS = ("offered", *OUTCOMES, "talk_s")
GROUPS = {"gateway": Record.gateway_id, "route": Record.route, "target": Record.target, "city": City.name}
SECONDS = {"hour": 3600, "day": 86400, "month": 86400}
TimeParam = int | str | None


PERIOD = {"hour": "%Y-%m-%dT%H:00Z", "day": "%Y-%m-%d", "month": "%Y-%m"}


def period(start: int, interval: str) -> str:
    return datetime.fromtimestamp(start, UTC).strftime(PERIOD[interval])


def finish(row: dict) -> dict:
    """Counts -> counts and ratios (answered and abandoned per offered call; talk per answered call)."""
    offered, answered = row["offered"], row["answered"]
    row["answer_ratio"] = round(answered / offered, 4) if offered else None
    row["abandon_ratio"] = round(row["abandoned"] / offered, 4) if offered else None
    row["avg_talk_s"] = round(row["talk_s"] / answered, 1) if answered else None
    return row


HOURLY = {"gateway": CallHour.gateway_id, "route": func.nullif(CallHour.route, ""),
          "target": func.nullif(CallHour.target, ""), "city": City.name}


def counted(s, group: str, interval: str, lo: int | None, hi: int | None) -> list[dict]:
    """Rows {key, start, offered, <outcomes>, talk_s} per group and UTC hour/day: summed from the
    hourly aggregates when the window is whole hours, else counted from the call records."""
    if all(t is None or t % 3600 == 0 for t in (lo, hi)):
        at, gateway, key, where = CallHour.hour, CallHour.gateway_id, HOURLY[group], []
        cols = [func.sum(getattr(CallHour, c)).label(c) for c in COUNTS]
    else:
        at, gateway, key = Record.at, Record.gateway_id, GROUPS[group]
        where = [Record.kind == "call", Record.at.is_not(None)]
        cols = [func.count().label("offered")]
        cols += [func.sum(case((Record.outcome == o, 1), else_=0)).label(o) for o in OUTCOMES]
        cols.append(func.coalesce(func.sum(Record.talk_s), 0).label("talk_s"))
    size = literal(SECONDS[interval], BigInteger, literal_execute=True)
    bucket = ((at // size) * size).label("bucket")
    key = key.label("key")
    q = select(key, bucket, *cols).where(*where)
    if group == "city":
        q = q.outerjoin(Gateway, Gateway.id == gateway).outerjoin(City, City.id == Gateway.city_id)
    if lo is not None:
        q = q.where(at >= lo)
    if hi is not None:
        q = q.where(at < hi)
    rows = s.execute(q.group_by(key, bucket)).mappings()
    return [{"key": r["key"], "start": int(r["bucket"]), **{c: int(r[c] or 0) for c in COUNTS}} for r in rows]


def by_month(rows: list[dict]) -> list[dict]:
    months: dict[tuple, dict] = {}
    for r in rows:
        t = datetime.fromtimestamp(r["start"], UTC)
        start = int(datetime(t.year, t.month, 1, tzinfo=UTC).timestamp())
        m = months.setdefault((r["key"], start), {"key": r["key"], "start": start, **dict.fromkeys(COUNTS, 0)})
        for c in COUNTS:
            m[c] += r[c]
    return list(months.values())


@router.get("/calls", dependencies=[Reader])
def call_report(
    s: SessionDep,
    group: Literal["city", "gateway", "route", "target"] = "city",
    interval: Literal["hour", "day", "month"] = "day",
    from_: Annotated[TimeParam, Query(alias="from", description="UTC seconds or ISO-8601, inclusive")] = None,
    to: Annotated[TimeParam, Query(description="UTC seconds or ISO-8601, exclusive")] = None,
) -> dict:
    """Offered, answered, abandoned, failed, rejected, after_hours, callback, denied, talk seconds, answer
    ratio, average talk time and abandon ratio, per group and period (UTC), with totals per group."""
    return call_report_data(s, group, interval, from_, to)


def call_report_data(s, group: str, interval: str, from_: TimeParam = None, to: TimeParam = None) -> dict:
    """The call report (see `call_report`): {group, interval, from, to, rows, totals}."""
    lo, hi = parse_time(from_, "from"), parse_time(to, "to")
    rows = counted(s, group, interval, lo, hi)
    if interval == "month":
        rows = by_month(rows)
    rows.sort(key=lambda r: (r["start"], str(r["key"])))
    totals: dict = {}
    for r in rows:
        t = totals.setdefault(r["key"], {"key": r["key"], **dict.fromkeys(COUNTS, 0)})
        for c in COUNTS:
            t[c] += r[c]
    for r in rows:
        r["period"] = period(r["start"], interval)
        finish(r)
    return {"group": group, "interval": interval, "from": lo, "to": hi, "rows": rows,
            "totals": [finish(t) for t in sorted(totals.values(), key=lambda t: str(t["key"]))]}
