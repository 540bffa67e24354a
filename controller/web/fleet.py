"""`/fleet`: every gateway at a glance (filter by city and status, sort by a column), and a gateway's page:
its state, last calls, alerts, commands (self-test, resend state, reboot) and a preview of its routing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from controller.services import alerts, fleet
from controller.services.errors import DomainError, Unavailable
from controller.services.report_privacy import masks_for, shown
from controller.web.deps import PageDb, PageForm, form_user, page_user
from controller.web.pageroute import PageRoute
from controller.web.render import page
from controller.web.session import FLEET, READ, PageError, flash

router = APIRouter(route_class=PageRoute, include_in_schema=False)
COMMANDERS = ("technician",)  # as the API's commands (admin too)
FleetViewer, Previewer, Commander = page_user(*FLEET), form_user(*FLEET), form_user(*COMMANDERS)


def send(request: Request):
    """The bridge's command path, looked up when used: a controller without a broker answers 503."""
    def go(gateway_id: str, op: str, args: dict) -> dict:
        bridge = request.app.state.bridge
        if bridge is None:
            raise Unavailable("gateway_id", "no MQTT bridge: the controller runs without a broker")
        return bridge.command(gateway_id, op, args)
    return go


@router.get("/fleet")
def fleet_page(request: Request, s: PageDb, who: FleetViewer, city: str = "", status: str = "", sort: str = "city",
               desc: str = "") -> Response:
    if len(city) > 128:
        raise PageError(422, "city", "at most 128 characters")
    rows = fleet.fleet(s, city, status, sort, desc == "1")
    return page(request, "fleet.html", who=who, rows=rows, cities=fleet.cities(s), city=city, status=status,
                sort=sort, desc=desc == "1", statuses=fleet.STATUSES, alert_counts=alerts.counts(s),
                online=sum(r["online"] for r in rows))


def _gateway_page(request: Request, s, who, gateway_id: str, status: int = 200, preview=None, form_in=None,
                  error=None) -> Response:
    """The gateway's page for `who`, who may see the fleet (the route's dependency said)."""
    gw = fleet.gateway(s, gateway_id)
    gw["calls"] = shown(gw["calls"], masks_for(who.user.role, getattr(request.app.state.settings, "mask_callers",
                                                                      True)))
    return page(request, "gateway.html", http_status=status, who=who, gw=gw, ops=fleet.CONSOLE_OPS,
                may_command=who.may(*COMMANDERS), may_see_calls=who.may(*READ), preview=preview,
                form=form_in or {}, error=error, alert_counts=alerts.counts(s))


@router.get("/fleet/{gateway_id}")
def gateway_page(request: Request, gateway_id: str, s: PageDb, who: FleetViewer) -> Response:
    return _gateway_page(request, s, who, gateway_id)


@router.post("/fleet/{gateway_id}/command")
def command(request: Request, gateway_id: str, data: PageForm, s: PageDb, who: Commander) -> Response:
    op = data.get("op", "")
    reply = fleet.command(s, send(request), gateway_id, op)
    text = f"{gateway_id} answered {op}: ok" + _summary(reply.get("result"))
    return flash(request, RedirectResponse(f"/fleet/{gateway_id}", status_code=303), text)


def _summary(result) -> str:
    """A command's result in a line: a self-test's checks counted, failed ones named; else the result cut short."""
    checks = result.get("checks") if isinstance(result, dict) else None
    if isinstance(checks, list) and all(isinstance(c, list) and len(c) >= 2 for c in checks):
        failed = [str(c[0]) for c in checks if c[1] is not True]
        return f" — {len(checks) - len(failed)} of {len(checks)} checks passed" + (
            f"; failed: {', '.join(failed)}" if failed else "")
    return f" — {str(result)[:200]}" if result not in (None, {}) else ""


@router.post("/fleet/{gateway_id}/preview")
def preview(request: Request, gateway_id: str, data: PageForm, s: PageDb, who: Previewer) -> Response:
    port, caller, at = data.get("port", ""), data.get("caller", ""), data.get("at", "").strip() or None
    try:
        if not 1 <= len(port) <= 16:
            raise PageError(422, "preview.port", "give an inbound port, e.g. gsm1 (at most 16 characters)")
        if len(caller) > 32:
            raise PageError(422, "preview.caller", "at most 32 characters")
        if at is not None and len(at) > 40:
            raise PageError(422, "preview.at", "at most 40 characters")
        result = fleet.preview(s, gateway_id, port, caller, at)
    except (PageError, DomainError) as e:
        if getattr(e, "field", "") == "gateway_id":
            raise
        return _gateway_page(request, s, who, gateway_id, status=e.status, form_in=data,
                             error=f"{e.field}: {e.reason}")
    return _gateway_page(request, s, who, gateway_id, preview=result, form_in=data)
