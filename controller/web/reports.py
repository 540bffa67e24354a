"""`/reports`: calls per city, gateway, route, centre or menu option by hour, day, month or year in the
region's local time: charts (server-side SVG) of the outcomes and answer ratio, and of talk time and the
service level (answered within `within_s` seconds of ringing), the table under them and the same table as
CSV. A service's year and its milestones are `/reports/year` (controller.web.report_year).

Counted by controller.services.report_local in local periods (a local day or month is not a UTC one); the
zone is the chosen city's, else the one most cities share (the region's)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from controller.services import alerts, report_local, reports
from controller.services.report_local import DEFAULT_WITHIN_S, MAX_WITHIN_S
from controller.web import report_year
from controller.web.deps import PageDb, page_user
from controller.web.pageroute import PageRoute
from controller.web.render import csv_download, page
from controller.web.session import FLEET, PageError
from controller.web.svgchart import grouped_bars

router = APIRouter(route_class=PageRoute, include_in_schema=False)
router.include_router(report_year.router)
GROUPS = {"city": "City", "gateway": "Gateway", "route": "Route", "target": "Centre", "option": "Menu option"}
INTERVALS = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
MAX_DAYS = {"hour": 31, "day": 400, "month": 3 * 366, "year": 5 * 366}  # bounds the hours counted and drawn
COLUMNS = ("offered", "answered", "abandoned", "unanswered", "answer_ratio", "talk_s")
NONE_KEY = {"city": "(no city)", "gateway": "(none)", "route": "(no route)", "target": "(no centre)",
            "option": "(no menu)"}
SERIES = (("offered", "#1d3557"), ("answered", "#15803d"), ("abandoned", "#a16207"), ("unanswered", "#b42318"))
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FleetViewer = page_user(*FLEET)


def _day(text: str, field: str) -> date:
    if not DAY.fullmatch(text):
        raise PageError(422, field, "a date as YYYY-MM-DD")
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise PageError(422, field, f"{text} is no date") from None
    if not 2000 <= d.year <= 2099:
        raise PageError(422, field, "a year from 2000 to 2099")
    return d


def _filters(params, zones: dict[str, str]) -> dict:
    """The GET form's fields, checked: each problem names its field (422), nothing else gets through."""
    group, interval = params.get("group", "city"), params.get("interval", "day")
    if group not in GROUPS:
        raise PageError(422, "group", f"one of {', '.join(GROUPS)}")
    if interval not in INTERVALS:
        raise PageError(422, "interval", f"one of {', '.join(INTERVALS)}")
    city = params.get("city", "")
    if city and city not in zones:
        raise PageError(422, "city", "no such city")
    zone = zones[city] if city else (Counter(zones.values()).most_common(1) or [("UTC", 0)])[0][0]
    try:
        tz = ZoneInfo(zone)
    except (ValueError, KeyError, OSError):
        tz = ZoneInfo("UTC")
    today = datetime.now(tz).date()
    lo = _day(params.get("from") or (today - timedelta(days=6)).isoformat(), "from")
    hi = _day(params.get("to") or today.isoformat(), "to")
    if hi < lo:
        raise PageError(422, "to", "on or after from")
    if (hi - lo).days >= MAX_DAYS[interval]:
        raise PageError(422, "to", f"at most {MAX_DAYS[interval]} days after from by {interval}")
    return {"group": group, "interval": interval, "city": city, "zone": tz, "from": lo, "to": hi,
            "within_s": _within(params)}


def _within(params) -> int:
    text = params.get("within_s") or str(DEFAULT_WITHIN_S)
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_WITHIN_S):
        raise PageError(422, "within_s", f"whole seconds from 1 to {MAX_WITHIN_S}")
    return int(text)


def report(s, f: dict) -> dict:
    """{periods, rows, totals}: rows per local period and key (only where there were calls); periods: every
    period of the window, in order, with the sums over keys (what the charts draw). Counted in local hours
    or days by controller.services.report_local, with the service level of `f["within_s"]`."""
    lo = report_local.local_start(f["from"], f["zone"])
    hi = report_local.local_start(f["to"] + timedelta(days=1), f["zone"])
    return report_local.by_period(s, f["group"], f["interval"], lo, hi, f["zone"], f["within_s"],
                                  city=f["city"] or None, none_key=NONE_KEY[f["group"]])


def table(data: dict, group: str, within_s: int = DEFAULT_WITHIN_S) -> list[list[str]]:
    """The table as text cells, header first: what the page shows and the CSV holds, cell for cell."""
    out = [["Period", GROUPS[group], "Offered", "Answered", "Abandoned", "Unanswered", "Answer ratio", "Talk (s)",
            f"Service level ({within_s} s)", "Average talk (s)"]]
    for r in data["rows"]:
        out.append([r["period"], r["key"], *(str(r[c]) for c in COLUMNS[:4]), _pct(r["answer_ratio"]),
                    str(r["talk_s"]), _pct(r["service_level"]),
                    "" if r["avg_talk_s"] is None else str(r["avg_talk_s"])])
    return out


def _pct(ratio) -> str:
    return "" if ratio is None else f"{100 * ratio:.1f}%"


def _chart(data: dict, f: dict):
    periods = data["periods"]
    return grouped_bars([p["period"] for p in periods], [(n, c, [p[n] for p in periods]) for n, c in SERIES],
                        ("answer ratio", "#2563eb", [p["answer_ratio"] for p in periods]),
                        title=f"Calls by {f['interval']}, {f['from']} to {f['to']}")


def _talk_chart(data: dict, f: dict):
    """Talk time (minutes, bars) and the service level (a line): drawn as the calls' chart is, with classes
    of their own (`talk`, `level`) so neither chart's marks count as the other's."""
    periods = data["periods"]
    svg = grouped_bars([p["period"] for p in periods], [("talk (min)", "#7c3aed", [round(p["talk_s"] / 60)
                                                                                  for p in periods])],
                       (f"service level ({f['within_s']} s)", "#0f766e", [p["service_level"] for p in periods]),
                       title=f"Talk time and service level by {f['interval']}, {f['from']} to {f['to']}")
    return Markup(str(svg).replace('class="bar"', 'class="talk"').replace('class="ratio"', 'class="level"'))


@router.get("/reports")
def reports_page(request: Request, s: PageDb, who: FleetViewer) -> Response:
    zones = reports.city_zones(s)
    params = request.query_params
    shown = {k: params.get(k, "")[:64] for k in ("group", "interval", "city", "from", "to", "within_s")}
    common = {"who": who, "groups": GROUPS, "intervals": INTERVALS, "cities": list(zones),
              "alert_counts": alerts.counts(s)}
    try:
        f = _filters(params, zones)
    except PageError as e:
        return page(request, "reports.html", http_status=e.status, error=f"{e.field}: {e.reason}",
                    f=shown, data=None, **common)
    data = report(s, f)
    query = urlencode({"group": f["group"], "interval": f["interval"], "city": f["city"],
                       "from": f["from"].isoformat(), "to": f["to"].isoformat(), "within_s": f["within_s"]})
    return page(request, "reports.html", zone=str(f["zone"]), f={**f, "from": f["from"].isoformat(),
                "to": f["to"].isoformat()}, data=data, chart=_chart(data, f), talk_chart=_talk_chart(data, f),
                table=table(data, f["group"], f["within_s"]), csv_query=query, **common)


@router.get("/reports.csv")
def reports_csv(request: Request, s: PageDb, who: FleetViewer) -> Response:
    f = _filters(request.query_params, reports.city_zones(s))
    return csv_download(table(report(s, f), f["group"], f["within_s"]),
                        f"calls-{f['group']}-{f['interval']}-{f['from']}-{f['to']}.csv")
