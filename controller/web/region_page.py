"""`/region`: the region's services, cities, centres (capacity, number, and the split of its lines the
compiler made among the gateways that dial it), deny prefixes, calendars with their holidays, and menus.

Operators and admins add, change and remove rows (as the API's region writes); viewers read. The forms
go through controller.services.region and .menus, so a mistake is refused naming the field as the API
does, and the page comes back with the form as it was typed and that field marked.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from controller.services import alerts, region, region_view
from controller.services.errors import DomainError
from controller.web import region_forms
from controller.web.deps import PageDb, PageForm, form_user, page_user
from controller.web.pageroute import PageRoute
from controller.web.region_forms import KINDS
from controller.web.render import page
from controller.web.session import READ, PageError, flash, int_param

router = APIRouter(route_class=PageRoute, include_in_schema=False)
WRITERS = ("operator",)  # as the API's region and menu writes (admin too)
Reader, Writer = page_user(*READ), form_user(*WRITERS)


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise PageError(404, "kind", f"no such part of the region: one of {', '.join(KINDS)}")
    return kind


def _editing(s, edit: str) -> tuple[str, int, dict] | None:
    """`?edit=centres:5`: that row's values, to fill its form."""
    if not edit:
        return None
    kind, _, rid = edit.partition(":")
    row_id = int_param(rid, "edit", high=2**31 - 1)
    if _kind(kind) == "menus":
        from controller.services import menus

        m = menus.as_dict(menus.get_menu(s, row_id))
        lines = [f"{k}={','.join(o.get('targets', []))}" + (f":{o['label']}" if o.get("label") else "")
                 for k, o in sorted(m["options"].items())]
        return kind, row_id, {**m, "options": "\n".join(lines), "city_id": m["city_id"] or ""}
    obj = region.get(s, kind, row_id)
    values = {f: getattr(obj, f) for f in region.KINDS[kind].schema.model_fields}
    if kind == "holidays":
        values["calendar"] = next((c["calendar"] for c in region_view.calendars(s) if c["city_id"] == obj.city_id),
                                  region.REGION_CALENDAR)
    return kind, row_id, {k: "" if v is None else v for k, v in values.items()}


def _region_page(request: Request, s, who, status: int = 200, error: DomainError | None = None,
                 typed: tuple[str, int | None, dict] | None = None, edit: str = "") -> Response:
    """The page for `who`, a reader (a writer, when a form came back), with a row's form filled."""
    filled = typed or _editing(s, edit)
    return page(request, "region.html", http_status=status, who=who, may_edit=who.may(*WRITERS),
                services=region.rows(s, "services"), cities=region.rows(s, "cities"),
                centres=region_view.centres(s), deny=region.rows(s, "deny-prefixes"),
                calendars=region_view.calendars(s), menus=region_view.menu_rows(s),
                error=f"{error.field}: {error.reason}" if error else None, bad_field=error.field if error else None,
                filled=filled, alert_counts=alerts.counts(s))


@router.get("/region")
def region_page(request: Request, s: PageDb, who: Reader, edit: str = "") -> Response:
    return _region_page(request, s, who, edit=edit)


def _run(request: Request, s, who, kind: str, row_id: str | None, data: dict[str, str], action: str) -> Response:
    kind = _kind(kind)
    rid = None if row_id is None else int_param(row_id, "id", high=2**31 - 1)
    try:
        if action == "delete":
            text = region_forms.remove(s, kind, rid)
        else:
            text = region_forms.save(s, kind, rid, data)
    except DomainError as e:
        if e.status == 404 and e.field in ("id", "kind"):
            raise
        s.rollback()  # nothing of a refused edit stays (its compiles neither)
        typed = None if action == "delete" else (kind, rid, data)
        return _region_page(request, s, who, status=e.status, error=e, typed=typed)
    return flash(request, RedirectResponse(f"/region#{kind}", status_code=303), text)


@router.post("/region/{kind}")
def add_row(request: Request, kind: str, data: PageForm, s: PageDb, who: Writer) -> Response:
    return _run(request, s, who, kind, None, data, "save")


@router.post("/region/{kind}/{row_id}")
def save_row(request: Request, kind: str, row_id: str, data: PageForm, s: PageDb, who: Writer) -> Response:
    return _run(request, s, who, kind, row_id, data, "save")


@router.post("/region/{kind}/{row_id}/delete")
def delete_row(request: Request, kind: str, row_id: str, data: PageForm, s: PageDb, who: Writer) -> Response:
    return _run(request, s, who, kind, row_id, data, "delete")
