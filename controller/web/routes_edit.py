"""The Routes page's forms: save (add or change) and delete a route, admins only, checked as the routes API
checks (controller.services.route_edits); a refusal shows the page again with the form as it was and the
API's field and reason next to the field. And the preview: what a gateway's latest compiled table does
with one call, by the gateways' own routing code (controller.services.fleet.preview)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from controller.services import fleet, route_edits
from controller.services.errors import DomainError, FieldError
from controller.services.times import parse_time
from controller.web.deps import PageDb, PageForm, form_user
from controller.web.pageroute import PageRoute
from controller.web.routes_page import EDITORS, render
from controller.web.session import FLEET, PageError, flash, int_param

router = APIRouter(route_class=PageRoute, include_in_schema=False)
HOURS = re.compile(r"^\s*(\S+)\s+(\S+?)\s*[-–]\s*(\S+)\s*$")
LIST_SPLIT = re.compile(r"[\s,→>]+")
Editor, Previewer = form_user(*EDITORS), form_user(*FLEET)
ACTIONS = ("reject", "callback", "next", "forward")
REASONS = {"ok": "a centre is free to take it", "no_route": "no route serves this port and caller at this time",
           "after_hours": "it is outside the route's hours", "closed_day": "the day is a closed day (a holiday)",
           "all_busy": "every centre of the route is busy (at its most calls)",
           "denied": "every number it could dial is in a denied prefix", "menu": "the service plays a menu"}


def _list(text: str) -> list[str]:
    return [x for x in LIST_SPLIT.split(text.strip()) if x]


def _action(text: str, field: str) -> dict | None:
    words = text.split()
    if not words:
        return None
    if words[0] not in ACTIONS or len(words) > 2 or (len(words) == 2) != (words[0] == "forward"):
        raise FieldError(f"routes.{field}", "write reject, callback, next, or forward and a centre code")
    return {"action": words[0]} | ({"target": words[1]} if len(words) == 2 else {})


def values(data: dict[str, str]) -> dict:
    """The form's text fields -> a route's values (what the API takes), or a FieldError naming the field."""
    hours = None
    if data.get("hours", "").strip():
        hours = []
        for i, part in enumerate(p for p in re.split(r"[;\n]", data["hours"]) if p.strip()):
            m = HOURS.match(part)
            if m is None:
                raise FieldError(f"routes.hours[{i}]",
                                 "write the days (1 = Monday) and start-end, e.g. 12345 08:00-18:00")
            hours.append({"days": m.group(1), "start": m.group(2), "end": m.group(3)})
    out = {"name": data.get("name", "").strip(), "service": data.get("service", "").strip(),
           "targets": _list(data.get("targets", "")), "strategy": data.get("strategy", "sequential").strip(),
           "hours": hours, "caller": _list(data.get("caller", "")),
           "fallback": _action(data.get("fallback", ""), "fallback"),
           "after_hours": _action(data.get("after_hours", ""), "after_hours")}
    for key in ("valid_from", "valid_until"):
        text = data.get(key, "").strip()
        out[key] = parse_time(text, f"routes.{key}") if text else None
    return out


def form_field(field: str | None) -> str:
    """The API's field ("routes.hours[0].end", "routes.service_id") -> the form's input ("hours", "service")."""
    head = re.match(r"routes\.([a-z_]+)", field or "")
    name = head.group(1) if head else ""
    name = {"service_id": "service", "city_id": "city"}.get(name, name)
    return name if name in route_edits.FIELDS else "route"


def _route_id(data: dict[str, str]) -> int | None:
    raw = data.get("route_id", "")
    return None if raw in ("", "new") else int_param(raw, "route_id", high=2**31 - 1)


@router.post("/routes/save")
def save(request: Request, data: PageForm, s: PageDb, who: Editor) -> Response:
    city, route_id = data.get("city", ""), _route_id(data)
    route_edits.city(s, city)  # an unknown city is the error page, not a form error
    try:
        route = route_edits.save_route(s, city, route_id, values(data))
        name, rid = route.name, route.id
    except DomainError as e:
        if e.field in ("city", "route_id"):
            raise
        s.rollback()  # nothing of a refused edit is kept (nor any table it compiled)
        return render(request, s, who, city, status=e.status, edit=str(route_id or "new"), form_in=data,
                      errors={form_field(e.field): f"{e.field}: {e.reason}"})
    text = f"route {name} saved in {city}: the gateways' tables are compiled; roll them out below"
    return flash(request, RedirectResponse(f"/routes?city={_q(city)}#route-{rid}", status_code=303), text)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


@router.post("/routes/delete")
def delete(request: Request, data: PageForm, s: PageDb, who: Editor) -> Response:
    city = data.get("city", "")
    route_id = int_param(data.get("route_id", ""), "route_id", high=2**31 - 1)
    name = route_edits.delete_route(s, city, route_id)
    return flash(request, RedirectResponse(f"/routes?city={_q(city)}", status_code=303),
                 f"route {name} deleted from {city}: the gateways' tables are compiled; roll them out below")


@router.post("/routes/preview")
def preview(request: Request, data: PageForm, s: PageDb, who: Previewer) -> Response:
    city = data.get("city", "")
    route_edits.city(s, city)
    port, caller, at = data.get("port", "").strip(), data.get("caller", "").strip(), data.get("at", "").strip()
    try:
        if not 1 <= len(port) <= 16:
            raise PageError(422, "preview.port", "give an inbound port, e.g. gsm1 (at most 16 characters)")
        if len(caller) > 32:
            raise PageError(422, "preview.caller", "at most 32 characters")
        if len(at) > 40:
            raise PageError(422, "preview.at", "at most 40 characters")
        gateway = data.get("gateway", "")
        if gateway not in route_edits.gateway_diffs(s, city):
            raise PageError(422, "preview.gateway", f"choose one of {city}'s gateways")
        result = fleet.preview(s, gateway, port, caller, at or None)
    except (PageError, DomainError) as e:
        return render(request, s, who, city, status=e.status, preview_in=data,
                      errors={"preview": f"{e.field}: {e.reason}"})
    result["why"] = REASONS.get(result["decision"].get("reason"), result["decision"].get("reason"))
    return render(request, s, who, city, preview=result, preview_in=data)
