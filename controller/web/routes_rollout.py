"""Rolling a city's compiled tables out from the Routes page (admins): a staged rollout (controller.rollouts)
to the city's gateways, the first one as the canary when asked; and the small JSON the page's script
(static/routes.js, our own, a few lines) polls to show each gateway's status as it changes, without reloads."""

from __future__ import annotations

from importlib.resources import files
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from controller.services import rollouts, route_edits
from controller.services.errors import FieldError, Unavailable
from controller.web.deps import PageDb, PageForm, form_user
from controller.web.pageroute import PageRoute
from controller.web.routes_page import EDITORS
from controller.web.session import FLEET, db_session, flash, int_param, signed_in

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_STATIC = files("controller.web").joinpath("static")
ASSETS = {"routes.js": "text/javascript", "routes.css": "text/css"}
Editor = form_user(*EDITORS)


@router.post("/routes/rollout")
def start(request: Request, data: PageForm, s: PageDb, who: Editor) -> Response:
    city = data.get("city", "")
    gateways = list(route_edits.gateway_diffs(s, city))
    if not gateways:
        raise FieldError("rollouts.gateways", f"{city} has no gateway to roll out to")
    if data.get("canary", "") not in ("", "1"):
        raise FieldError("canary", "1 (the first gateway first) or nothing")
    bridge = request.app.state.bridge
    if bridge is None:
        raise Unavailable("bridge", "no MQTT bridge: the controller runs without a broker")
    canary = gateways[:1] if data.get("canary") == "1" and len(gateways) > 1 else []
    rid = rollouts.begin(s, bridge, gateways, canary).id
    staged = f" ({canary[0]} first, then the rest)" if canary else ""
    return flash(request, RedirectResponse(f"/routes?city={quote(city, safe='')}&rollout={rid}#rollout",
                                           status_code=303), f"rollout {rid} started to {len(gateways)} "
                                                             f"gateway{'s' if len(gateways) != 1 else ''}{staged}")


@router.get("/routes/rollouts/{rollout_id}")
def watch(request: Request, rollout_id: str) -> Response:
    """{id, status, reason, counts, targets: [{gateway, stage, version, status, applied_version, ...}]}."""
    with db_session(request) as s:
        who = signed_in(request, s)
        if who is None:
            return JSONResponse({"field": None, "reason": "sign in first"}, status_code=401)
        if not who.may(*FLEET):
            return JSONResponse({"field": "role", "reason": f"{who.user.role} may not see rollouts"}, status_code=403)
        rid = int_param(rollout_id, "rollout_id", high=2**31 - 1)
        body = rollouts.describe(s, rollouts.load(s, rid))
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _asset(name: str) -> Response:
    return Response(_STATIC.joinpath(name).read_bytes(), media_type=ASSETS[name],
                    headers={"Cache-Control": "max-age=300"})


@router.get("/static/routes.js")
def script() -> Response:
    """The Routes page's watcher (our own few lines, served like console.css)."""
    return _asset("routes.js")


@router.get("/static/routes.css")
def styles() -> Response:
    return _asset("routes.css")
