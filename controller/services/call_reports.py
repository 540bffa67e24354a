"""Reports on operators' outbound calls (DESIGN §5a): answered and not reached per city and period.

Counted from the gateways' `outbound` records (what really happened on the line), not from the requests:
a request whose call never ended in a record is not a call yet."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, case, func, literal, select
from sqlalchemy.orm import Session

from controller.models import City, Gateway, Record

NOT_REACHED = ("agent_no_answer", "citizen_no_answer", "citizen_busy", "failed")
SECONDS = {"hour": 3600, "day": 86400, "month": 86400}
COUNTS = ("placed", "answered", "not_reached", *NOT_REACHED, "talk_s")


def outbound_report(s: Session, interval: str, lo: int | None, hi: int | None, name) -> list[dict]:
    """Rows {city, start, period, placed, answered, not_reached, <each not-reached outcome>, talk_s};
    `name(start, interval)` names a period."""
    size = literal(SECONDS[interval], BigInteger, literal_execute=True)
    bucket = ((Record.at // size) * size).label("bucket")
    cols = [func.count().label("placed"),
            func.sum(case((Record.outcome == "answered", 1), else_=0)).label("answered"),
            *[func.sum(case((Record.outcome == o, 1), else_=0)).label(o) for o in NOT_REACHED],
            func.coalesce(func.sum(Record.talk_s), 0).label("talk_s")]
    q = (select(City.name.label("city"), bucket, *cols).select_from(Record)
         .outerjoin(Gateway, Gateway.id == Record.gateway_id).outerjoin(City, City.id == Gateway.city_id)
         .where(Record.kind == "outbound", Record.at.is_not(None)))
    if lo is not None:
        q = q.where(Record.at >= lo)
    if hi is not None:
        q = q.where(Record.at < hi)
    cells: dict[tuple, dict] = {}
    for r in s.execute(q.group_by(City.name, bucket)).mappings():
        start = int(r["bucket"])
        if interval == "month" and -62135596800 <= start <= 253402300799:
            t = datetime.fromtimestamp(start, UTC)
            start = int(datetime(t.year, t.month, 1, tzinfo=UTC).timestamp())
        row = cells.setdefault((r["city"], start), {"city": r["city"], "start": start, **dict.fromkeys(COUNTS, 0)})
        for c in ("placed", "answered", *NOT_REACHED, "talk_s"):
            row[c] += int(r[c] or 0)
    out = []
    for (_, start), row in sorted(cells.items(), key=lambda kv: (kv[0][1], str(kv[0][0]))):
        row["not_reached"] = sum(row[o] for o in NOT_REACHED)
        row["period"] = name(start, interval)
        out.append(row)
    return out
