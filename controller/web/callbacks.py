"""`/callbacks`: the call-back queue, oldest first, with city, time and attempts; "call back now" through
the outbound service (the gateway rings the operator's phone, then the caller), mark done, add a note."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from controller.services import alerts, callbacks, outbound
from controller.services.errors import DomainError
from controller.services.report_privacy import masks_for, shown
from controller.web.deps import PageDb, PageForm, form_user, page_user
from controller.web.fleet import send
from controller.web.pageroute import PageRoute
from controller.web.render import page
from controller.web.session import READ, flash, int_param

router = APIRouter(route_class=PageRoute, include_in_schema=False)
OPERATORS = ("operator",)  # as the API's call-back writes (admin too)
AGENT_COOKIE = "citygate_agent"  # the operator's phone, remembered for the next call back (not a secret)
Reader, Operator = page_user(*READ), form_user(*OPERATORS)


def _queue_page(request: Request, s, who, status: int = 200, error: str | None = None, city: str = "",
                agent: str | None = None) -> Response:
    """The queue for `who`, a reader (an operator, when a form came back)."""
    rows, total = callbacks.queue(s, city)
    rows = shown(rows, masks_for(who.user.role, getattr(request.app.state.settings, "mask_callers", True)))
    from controller.services.fleet import cities

    return page(request, "callbacks.html", http_status=status, who=who, rows=rows, total=total, city=city,
                cities=cities(s), error=error, may_operate=who.may(*OPERATORS), alert_counts=alerts.counts(s),
                agent=agent if agent is not None else request.cookies.get(AGENT_COOKIE, "")[:16])


@router.get("/callbacks")
def queue_page(request: Request, s: PageDb, who: Reader, city: str = "") -> Response:
    return _queue_page(request, s, who, city=city)


def _run(request: Request, s, who, call_id: str, data: dict[str, str], action) -> Response:
    cid = int_param(call_id, "call_id")
    try:
        text = action(s, who, cid, data)
    except DomainError as e:
        if e.status == 404:
            raise
        s.rollback()
        return _queue_page(request, s, who, status=e.status, error=f"{e.field}: {e.reason}",
                           agent=data.get("agent"))
    response = flash(request, RedirectResponse("/callbacks", status_code=303), text)
    if data.get("agent"):
        response.set_cookie(AGENT_COOKIE, data["agent"][:16], max_age=30 * 86400, path="/callbacks",
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/callbacks/{call_id}/call")
def call_back(request: Request, call_id: str, data: PageForm, s: PageDb, who: Operator) -> Response:
    def action(s, who, cid, data):
        placed = outbound.call_back(s, send(request), who.user, cid, data.get("agent", "").strip())
        return f"{placed['gateway']} rings {placed['agent']}, then {placed['citizen']} (call-back {cid})"
    return _run(request, s, who, call_id, data, action)


@router.post("/callbacks/{call_id}/done")
def done(request: Request, call_id: str, data: PageForm, s: PageDb, who: Operator) -> Response:
    def action(s, who, cid, data):
        callbacks.done(s, cid)
        return f"call-back {cid} marked done"
    return _run(request, s, who, call_id, data, action)


@router.post("/callbacks/{call_id}/note")
def note(request: Request, call_id: str, data: PageForm, s: PageDb, who: Operator) -> Response:
    def action(s, who, cid, data):
        callbacks.add_note(s, cid, who.user.name, data.get("text", ""))
        return f"note added to call-back {cid}"
    return _run(request, s, who, call_id, data, action)
