"""Call records: search and CSV export; the call-back queue (callers nobody could take)."""

import csv
import io
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from controller.api.deps import INT64_MAX, ApiError, CurrentUser, Operator, Reader, SessionDep, errors, not_found
from controller.api.routes.common import TEXT_PARAM, Offset, Page, TimeParam, parse_time, utc_text
from controller.models import OPEN_CALLBACKS, City, Gateway, Record
from controller.services.report_privacy import masks_for, shown

router = APIRouter(tags=["calls"])
COLUMNS = ("id", "gateway", "city", "at", "utc", "port", "caller", "route", "outcome", "target", "attempts",
           "ring_s", "talk_s", "reason", "callback_done_at", "kind", "option", "agent", "callback_attempts")
MAX_JSON = 1000
Text = Annotated[str | None, Query(max_length=TEXT_PARAM)]


class CallOut(BaseModel):
    id: int
    kind: str = "call"  # or outbound: an operator's call, `caller` the citizen called
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
    option: str | None = None  # the menu key the call used (DESIGN §5a)
    agent: str | None = None  # outbound: the operator's phone
    callback_done_at: int | None
    callback_attempts: int | None = None  # call-backs: calls back that did not reach the caller


def _call(r: Record, city: str | None) -> dict:
    """A stored call as the API shows it; `utc` is null when `at` is no date (a stored row may hold any time)."""
    agent = r.data.get("agent") if r.kind == "outbound" and isinstance(r.data, dict) else None
    return {"id": r.id, "kind": r.kind, "gateway": r.gateway_id, "city": city, "at": r.at, "utc": utc_text(r.at),
            "port": r.port,
            "caller": r.caller, "route": r.route, "outcome": r.outcome, "target": r.target, "attempts": r.attempts,
            "ring_s": r.ring_s, "talk_s": r.talk_s, "reason": r.reason, "callback_done_at": r.callback_done_at,
            "option": r.option, "agent": agent if isinstance(agent, str) else None,
            "callback_attempts": r.callback_attempts}


def _masked(request: Request, user) -> bool:
    """Whether this user sees callers' numbers masked (a viewer, with the mask_callers setting on)."""
    return masks_for(user.role, getattr(request.app.state.settings, "mask_callers", True))


def _calls(kind: str = "call"):
    return (select(Record, City.name).outerjoin(Gateway, Gateway.id == Record.gateway_id)
            .outerjoin(City, City.id == Gateway.city_id).where(Record.kind == kind))


def _cell(v) -> str:
    """A CSV cell a spreadsheet will not run as a formula (phone numbers like +380... stay as they are)."""
    text = "" if v is None else str(v)
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in ("+", "-") and not text[1:].isdigit()):
        return "'" + text
    return text


@router.get("/calls", response_model=Page[CallOut], dependencies=[Reader])
def list_calls(
    s: SessionDep,
    request: Request,
    user: CurrentUser,
    gateway: Text = None,
    city: Annotated[str | None, Query(max_length=TEXT_PARAM, description="city name")] = None,
    outcome: Text = None,
    route: Text = None,
    target: Text = None,
    from_: Annotated[TimeParam, Query(alias="from", description="UTC seconds or ISO-8601, inclusive")] = None,
    to: Annotated[TimeParam, Query(description="UTC seconds or ISO-8601, exclusive")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="default 100 (JSON), 100000 (CSV)")] = None,
    offset: Offset = 0,
    format: Literal["json", "csv"] = "json",
    kind: Annotated[Literal["call", "outbound"], Query(description="call: citizens' calls; outbound: operators' "
                                                                   "calls to citizens")] = "call",
    option: Annotated[str | None, Query(max_length=8, description="menu key")] = None,
):
    """Call records, newest first, filtered; `format=csv` exports them as text/csv."""
    q = _calls(kind)
    if option is not None:
        q = q.where(Record.option == option)
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
    calls = shown([_call(r, c) for r, c in rows], _masked(request, user))
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
def list_callbacks(s: SessionDep, request: Request, user: CurrentUser, gateway: Text = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_JSON)] = 100, offset: Offset = 0):
    """Callers to call back (outcome callback, not done yet), oldest first."""
    q = _calls().where(OPEN_CALLBACKS)  # as text, so the planner matches the partial index's condition
    if gateway is not None:
        q = q.where(Record.gateway_id == gateway)
    rows = s.execute(q.order_by(Record.at, Record.id).limit(limit).offset(offset)).all()
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    return {"data": shown([_call(r, c) for r, c in rows], _masked(request, user)), "count": total}


@router.post("/callbacks/{call_id}/done", response_model=CallOut, dependencies=[Operator], responses=errors(404))
def callback_done(call_id: Annotated[int, Path(ge=1, le=INT64_MAX)], s: SessionDep):
    """Mark a call-back done (again is harmless: the first time is kept)."""
    row = s.execute(_calls().where(Record.id == call_id, Record.outcome == "callback")).first()
    if row is None:
        raise not_found("call_id", f"call-back {call_id}")
    record, city = row
    if record.callback_done_at is None:
        record.callback_done_at = int(time.time())
    return _call(record, city)
