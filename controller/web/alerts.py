"""`/alerts`: open alerts (new and acknowledged) and past ones; acknowledge ("someone is on it") and resolve."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from controller.services import alerts
from controller.web.pageroute import PageRoute
from controller.web.render import page
from controller.web.session import (
    FLEET,
    checked,
    db_session,
    flash,
    form,
    int_param,
    need,
    signed_in,
    to_login,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
WORKERS = ("operator", "technician")  # as the API's resolve (admin too)


@router.get("/alerts")
def alerts_page(request: Request, state: str = "open", gateway: str = "") -> Response:
    with db_session(request) as s:
        who = signed_in(request, s)
        if who is None:
            return to_login(request)
        need(who, *FLEET)
        rows, total = alerts.list_alerts(s, state, gateway)
        return page(request, "alerts.html", who=who, rows=rows, total=total, state=state, gateway=gateway,
                    states=alerts.STATES, may_work=who.may(*WORKERS), alert_counts=alerts.counts(s))


async def _post(request: Request, alert_id: str, action: str) -> Response:
    data = await form(request)
    return await run_in_threadpool(_run, request, alert_id, data, action)


def _run(request: Request, alert_id: str, data: dict[str, str], action: str) -> Response:
    with db_session(request) as s:
        who = checked(request, s, data)
        need(who, *WORKERS)
        aid = int_param(alert_id, "alert_id", high=2**31 - 1)
        alert = (alerts.acknowledge if action == "acknowledge" else alerts.resolve)(s, aid, who.user.name)
        text = f"alert {aid} ({alert.code}) {'acknowledged' if action == 'acknowledge' else 'resolved'}"
    back = data.get("back", "")
    back = back if back in ("/alerts", "/alerts?state=past", "/alerts?state=all") else "/alerts"
    return flash(request, RedirectResponse(back, status_code=303), text)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, alert_id: str) -> Response:
    return await _post(request, alert_id, "acknowledge")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(request: Request, alert_id: str) -> Response:
    return await _post(request, alert_id, "resolve")
