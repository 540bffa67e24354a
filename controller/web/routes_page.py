"""`/routes`: a city's routes, editable by admins (controller.web.routes_edit); a preview of a call by the
gateway's own routing code; each gateway's compiled table against the one it runs (routes and targets
added, removed, changed, and the routing decisions that change: controller.impact); a staged rollout to the
city's gateways, watched gateway by gateway without reloading (controller.web.routes_rollout).

Everyone who sees the fleet reads this page; only admins edit and roll out (forms carry the CSRF token)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from controller.services import alerts, route_edits
from controller.services import rollouts as rollout_service
from controller.services.city_routes import city_routes
from controller.services.fleet import cities
from controller.services.times import utc_text
from controller.web.deps import PageDb, page_user
from controller.web.pageroute import PageRoute
from controller.web.render import env, page
from controller.web.session import FLEET, PageError, Who

router = APIRouter(route_class=PageRoute, include_in_schema=False)
EDITORS = ()  # admins only (Who.may lets admins do anything)
FleetViewer = page_user(*FLEET)


def _iso(ts) -> str:
    return utc_text(ts) or ""


def _action(a) -> str:
    if not isinstance(a, dict):
        return ""
    return " ".join(str(x) for x in (a.get("action"), a.get("target")) if x)


def form_values(r: dict) -> dict[str, str]:
    """A stored route as the edit form's text fields (what routes_edit.values parses back)."""
    hours = r.get("hours") or []
    return {"name": r["name"], "service": r["service"], "targets": ", ".join(r["targets"]),
            "strategy": r["strategy"], "caller": ", ".join(r["caller"]),
            "hours": "; ".join(f"{h.get('days')} {h.get('start')}-{h.get('end')}" for h in hours
                               if isinstance(h, dict)),
            "fallback": _action(r.get("fallback")), "after_hours": _action(r.get("after_hours")),
            "valid_from": _iso(r.get("valid_from")), "valid_until": _iso(r.get("valid_until"))}


env.filters["action_text"] = _action


def render(request: Request, s: Session, who: Who, city: str = "", *, status: int = 200, edit: str = "",
           form_in: dict | None = None, errors: dict | None = None, preview: dict | None = None,
           preview_in: dict | None = None, rollout_id: int | None = None) -> Response:
    """The page, with an edit form open (`edit`: a route id or "new"), a form's values and errors kept,
    a preview's answer, or a rollout being watched; `who` may see the fleet (the caller's dependency said)."""
    names = cities(s)
    city = city or (names[0] if names else "")
    data = city_routes(s, city) if city else None
    rows = route_edits.editable(s, city) if city else []
    diffs = route_edits.gateway_diffs(s, city) if city else {}
    may_edit = who.may(*EDITORS)
    if edit and not may_edit:
        edit = ""
    if edit and edit != "new" and form_in is None:
        match = [r for r in rows if str(r["id"]) == edit]
        if not match:
            raise PageError(404, "edit", f"no route {edit[:20]!r} in {city}")
        form_in = form_values(match[0])
    rollout = None
    if rollout_id is not None:
        rollout = rollout_service.describe(s, rollout_service.load(s, rollout_id))
    return page(request, "routes.html", http_status=status, who=who, cities=names, data=data, rows=rows,
                diffs=diffs, may_edit=may_edit, edit=edit, form=form_in or {"strategy": "sequential"},
                errors=errors or {}, services=route_edits.services(s), preview=preview,
                preview_form=preview_in or {}, rollout=rollout, alert_counts=alerts.counts(s))


@router.get("/routes")
def routes_page(request: Request, s: PageDb, who: FleetViewer, city: str = "", edit: str = "",
                rollout: str = "") -> Response:
    rollout_id = None
    if rollout:
        if not (rollout.isascii() and rollout.isdigit() and len(rollout) <= 9 and int(rollout) >= 1):
            raise PageError(422, "rollout", "must be a rollout number")
        rollout_id = int(rollout)
    if len(edit) > 12:
        raise PageError(422, "edit", "a route number or new")
    return render(request, s, who, city, edit=edit, rollout_id=rollout_id)
