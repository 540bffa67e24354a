"""`/alerts`: open alerts (new and acknowledged) and past ones; acknowledge ("someone is on it") and resolve."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from controller.services import alerts
from controller.web.deps import PageDb, PageForm, form_user, page_user
from controller.web.pageroute import PageRoute
from controller.web.render import page
from controller.web.session import FLEET, flash, int_param

router = APIRouter(route_class=PageRoute, include_in_schema=False)
WORKERS = ("operator", "technician")  # as the API's resolve (admin too)
FleetViewer, Worker = page_user(*FLEET), form_user(*WORKERS)


@router.get("/alerts")
def alerts_page(request: Request, s: PageDb, who: FleetViewer, state: str = "open", gateway: str = "") -> Response:
    rows, total = alerts.list_alerts(s, state, gateway)
    return page(request, "alerts.html", who=who, rows=rows, total=total, state=state, gateway=gateway,
                states=alerts.STATES, may_work=who.may(*WORKERS), alert_counts=alerts.counts(s))


def _run(request: Request, s, who, alert_id: str, data: dict[str, str], action: str) -> Response:
    aid = int_param(alert_id, "alert_id", high=2**31 - 1)
    alert = (alerts.acknowledge if action == "acknowledge" else alerts.resolve)(s, aid, who.user.name)
    text = f"alert {aid} ({alert.code}) {'acknowledged' if action == 'acknowledge' else 'resolved'}"
    back = data.get("back", "")
    back = back if back in ("/alerts", "/alerts?state=past", "/alerts?state=all") else "/alerts"
    return flash(request, RedirectResponse(back, status_code=303), text)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: str, data: PageForm, s: PageDb, who: Worker) -> Response:
    return _run(request, s, who, alert_id, data, "acknowledge")


@router.post("/alerts/{alert_id}/resolve")
def resolve(request: Request, alert_id: str, data: PageForm, s: PageDb, who: Worker) -> Response:
    return _run(request, s, who, alert_id, data, "resolve")
