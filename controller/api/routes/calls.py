"""Call records: search and CSV export; the call-back queue (callers nobody could take)."""

import csv
import io
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from controller.api.deps import ApiError, Operator, Reader, SessionDep, not_found
from controller.api.routes.common import Page, parse_time
from controller.models import OPEN_CALLBACKS, City, Gateway, Record

router = APIRouter(tags=["calls"])
COLUMNS = ("id", "gateway", "city", "at", "utc", "port", "caller", "route", "outcome", "target", "attempts",
           "ring_s", "talk_s", "reason", "callback_done_at")
TimeParam = int | str | None
MAX_JSON = 1000


class CallOut(BaseModel):
    id: int
    gateway: str
    city: str | None
    at: int | None
    utc: str | None
    port: str | None
    caller: str | None
    route: str | None
    outcome: str | None
    target: str | None
    attempts: int | None
    ring_s: int | None
    talk_s: int | None
    reason: str | None
    callback_done_at: int | None


def _call(r: Record, city: str | None) -> dict:
    utc = datetime.fromtimestamp(r.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if r.at is not None else None
    return {"id": r.id, "gateway": r.gateway_id, "city": city, "at": r.at, "utc": utc, "port": r.port,
            "caller": r.caller, "route": r.route, "outcome": r.outcome, "target": r.target, "attempts": r.attempts,
            "ring_s": r.ring_s, "talk_s": r.talk_s, "reason": r.reason, "callback_done_at": r.callback_done_at}


def _calls():
    return (select(Record, City.name).outerjoin(Gateway, Gateway.id == Record.gateway_id)
            .outerjoin(City, City.id == Gateway.city_id).where(Record.kind == "call"))


def _cell(v) -> str:
    """A CSV cell a spreadsheet will not run as a formula (phone numbers like +380... stay as they are)."""
    text = "" if v is None else str(v)
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in ("+", "-") and not text[1:].isdigit()):
        return "'" + text
    return text


@router.get("/calls", response_model=Page[CallOut], dependencies=[Reader])
def list_calls(
    s: SessionDep,
    gateway: str | None = None,
    city: Annotated[str | None, Query(description="city name")] = None,
    outcome: str | None = None,
    route: str | None = None,
    target: str | None = None,
    from_: Annotated[TimeParam, Query(alias="from", description="UTC seconds or ISO-8601, inclusive")] = None,
    to: Annotated[TimeParam, Query(description="UTC seconds or ISO-8601, exclusive")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="default 100 (JSON), 100000 (CSV)")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    format: Literal["json", "csv"] = "json",
):
    """Call records, newest first, filtered; `format=csv` exports them as text/csv."""
    q = _calls()
    for column, value in ((Record.gateway_id, gateway), (City.name, city), (Record.outcome, outcome),
                          (Record.route, route), (Record.target, target)):
        if value is not None:
            q = q.where(column == value)
    lo, hi = parse_time(from_, "from"), parse_time(to, "to")
    if lo is not None:
        q = q.where(Record.at >= lo)
    if hi is not None:
        q = q.where(Record.at < hi)
    if format == "json" and (limit or 0) > MAX_JSON:
        raise ApiError(422, "limit", f"at most {MAX_JSON} per page as JSON; use format=csv for exports")
    limit = limit or (100 if format == "json" else 100_000)
    rows = s.execute(q.order_by(Record.at.desc(), Record.id.desc()).limit(limit).offset(offset)).all()
    calls = [_call(r, c) for r, c in rows]
    if format == "csv":
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(COLUMNS)
        w.writerows([_cell(c[k]) for k in COLUMNS] for c in calls)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="calls.csv"'})
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    return {"data": calls, "count": total}


@router.get("/callbacks", response_model=Page[CallOut], dependencies=[Reader])
def list_callbacks(s: SessionDep, gateway: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_JSON)] = 100, offset: Annotated[int, Query(ge=0)] = 0):
    """Callers to call back (outcome callback, not done yet), oldest first."""
    q = _calls().where(OPEN_CALLBACKS)  # as text, so the planner matches the partial index's condition
    if gateway is not None:
        q = q.where(Record.gateway_id == gateway)
    rows = s.execute(q.order_by(Record.at, Record.id).limit(limit).offset(offset)).all()
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    return {"data": [_call(r, c) for r, c in rows], "count": total}


@router.post("/callbacks/{call_id}/done", response_model=CallOut, dependencies=[Operator])
def callback_done(call_id: int, s: SessionDep):
    """Mark a call-back done (again is harmless: the first time is kept)."""
    row = s.execute(_calls().where(Record.id == call_id, Record.outcome == "callback")).first()
    if row is None:
        raise not_found("call_id", f"call-back {call_id}")
    record, city = row
    if record.callback_done_at is None:
        record.callback_done_at = int(time.time())
    return _call(record, city)
