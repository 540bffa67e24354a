"""Jinja2 templates (package data under controller/web/templates) with autoescaping, the filters the pages
share (times, sizes, signal), the error page every PageError and DomainError becomes, and the reports'
tables as CSV downloads."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from controller.web.session import db_session, signed_in, take_flash

env = Environment(loader=PackageLoader("controller.web", "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)


def _ok_time(ts) -> bool:
    return type(ts) is int and 946684800 <= ts < 4102444800  # the contract's times (2000 to 2100)


def ago(ts) -> str:
    """'42 s ago', '5 min ago', '3 h ago', '2 d ago'; '—' for nothing."""
    if not _ok_time(ts):
        return "—"
    d = int(time.time()) - ts
    if d < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if d >= size:
            return f"{d // size} {unit} ago"
    return f"{d} s ago"


def utc(ts) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if _ok_time(ts) else "—"


def local(ts, zone: str | None = None) -> str:
    """Wall time in the city's zone (the time the caller lived), UTC when the zone is unknown."""
    if not _ok_time(ts):
        return "—"
    try:
        return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%d %b %H:%M") if zone else utc(ts)
    except (ValueError, KeyError, OSError):
        return utc(ts)


def kb(n) -> str:
    return f"{round(n / 1024)} KB" if type(n) is int and n >= 0 else "—"


def bars(csq) -> int:
    """GSM CSQ (0-31, 99 unknown) as 0-4 bars."""
    if type(csq) is not int or not 0 <= csq <= 31:
        return 0
    return min(4, 1 + csq // 8) if csq >= 2 else 0


env.filters.update(ago=ago, utc=utc, local=local, kb=kb, bars=bars)


def page(request: Request, template: str, http_status: int = 200, **context) -> HTMLResponse:
    """Render a page for the signed-in user (`who` in context), with the flash message left for it."""
    flash = take_flash(request)
    html = env.get_template(template).render(request=request, path=request.url.path, flash=flash, **context)
    response = HTMLResponse(html, status_code=http_status)
    if flash is not None:
        response.delete_cookie("citygate_flash", path="/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "default-src 'self'; form-action 'self'; frame-ancestors 'none'"
    return response


def error_page(request: Request, status: int, field: str | None, reason: str) -> HTMLResponse:
    with db_session(request) as s:
        who = signed_in(request, s)
        return page(request, "error.html", http_status=status, who=who, status_code=status, field=field, reason=reason)


def csv_download(rows: list[list[str]], filename: str) -> Response:
    """A table of text cells as a CSV attachment (UTF-8, CRLF lines). A cell a spreadsheet would run as a
    formula (=, +, -, @ first) is quoted with ', so opening the file runs nothing a caller typed."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})
