"""`/reports/year`: a service's year on one page (the 122 line's yearly report) in the region's local time:
key figures (calls offered and answered, answer ratio, service level, talk time, the busiest month, day
and hour, call-backs), a chart and a table per month, a table per city, the milestones reached that year
(every N-th call of the service since its first); `/reports/year.csv` holds the same tables, cell for
cell. Counted by controller.services.report_year."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from controller.services import alerts, report_year
from controller.services.errors import DomainError
from controller.services.report_local import DEFAULT_WITHIN_S, MAX_WITHIN_S, region_zone
from controller.web.deps import PageDb, page_user
from controller.web.pageroute import PageRoute
from controller.web.render import csv_download, page
from controller.web.session import FLEET, PageError
from controller.web.svgchart import grouped_bars

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SERIES = (("offered", "#1d3557"), ("answered", "#15803d"), ("abandoned", "#a16207"), ("unanswered", "#b42318"))
HEAD = ["Offered", "Answered", "Abandoned", "Unanswered", "Answer ratio", "Service level", "Talk (s)",
        "Average talk (s)"]
DEFAULT_EVERY = 100_000
MILESTONES_SHOWN = 200
FleetViewer = page_user(*FLEET)


def _whole(params, field: str, default: int, lo: int, hi: int) -> int:
    text = params.get(field) or str(default)
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and lo <= int(text) <= hi):
        raise PageError(422, field, f"a whole number from {lo} to {hi}")
    return int(text)


def _filters(s, params) -> dict:
    """The form's fields, checked (422 naming the field); the service defaults to the first one."""
    numbers = [n for n, _ in report_year.services(s)]
    service = params.get("service") or (numbers[0] if numbers else "")
    if service not in numbers:
        raise PageError(422, "service", "no such service" if service else "no service yet")
    this_year = datetime.now(region_zone(s)).year
    return {"service": service, "year": _whole(params, "year", this_year, *report_year.YEARS),
            "within_s": _whole(params, "within_s", DEFAULT_WITHIN_S, 1, MAX_WITHIN_S),
            "every": _whole(params, "every", DEFAULT_EVERY, 1, report_year.MAX_EVERY)}


def ordinal(n: int) -> str:
    """100000 -> '100,000th', 2 -> '2nd', 13 -> '13th'."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _hms(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def figures(y: dict) -> list[tuple[str, str]]:
    """The key figures as (name, value) text, in the page's order."""
    t, b, cb = y["totals"], y["busiest"], y["callbacks"]

    def busiest(x):
        return "—" if x is None else f"{x['period']} ({x['offered']} calls)"

    return [("Calls offered", str(t["offered"])), ("Calls answered", str(t["answered"])),
            ("Answer ratio", _pct(t["answer_ratio"])),
            (f"Service level (answered within {y['within_s']} s)", _pct(t["service_level"])),
            ("Calls abandoned", str(t["abandoned"])), ("Talk time, total", _hms(t["talk_s"])),
            ("Talk time, average", "—" if t["avg_talk_s"] is None else f"{t['avg_talk_s']:.0f} s"),
            ("Busiest month", busiest(b["month"])), ("Busiest day", busiest(b["day"])),
            ("Busiest hour", busiest(b["hour"])), ("Call-backs requested", str(cb["requested"])),
            ("Call-backs made", str(cb["placed"])), ("Call-backs that reached the caller", str(cb["reached"]))]


def rows(items: list[dict], key: str) -> list[list[str]]:
    """A table's body: per month or city the counts, ratios and talk time as text."""
    return [[r[key], *(str(r[c]) for c in ("offered", "answered", "abandoned", "unanswered")),
             _pct(r["answer_ratio"]), _pct(r["service_level"]), str(r["talk_s"]),
             "—" if r["avg_talk_s"] is None else str(r["avg_talk_s"])] for r in items]


def _milestone_rows(m: dict) -> list[list[str]]:
    return [[f"{x['n']:,}", x["local"] or "—", x["city"] or "—", x["gateway"], x["port"] or "—", x["outcome"] or "—"]
            for x in m["milestones"]]


def _data(s, f: dict) -> tuple[dict, dict]:
    y = report_year.year_figures(s, f["service"], f["year"], f["within_s"])
    m = report_year.milestones(s, f["service"], f["every"], MILESTONES_SHOWN, before=y["to"], since=y["from"])
    return y, m


@router.get("/reports/year")
def year_page(request: Request, s: PageDb, who: FleetViewer) -> Response:
    params = request.query_params
    common = {"who": who, "services": report_year.services(s), "alert_counts": alerts.counts(s),
              "max_every": report_year.MAX_EVERY}
    try:
        f = _filters(s, params)
        y, m = _data(s, f)
    except (PageError, DomainError) as e:
        shown = {k: params.get(k, "")[:16] for k in ("service", "year", "within_s", "every")}
        return page(request, "report_year.html", http_status=e.status, error=f"{e.field}: {e.reason}", f=shown,
                    y=None, **common)
    months = y["months"]
    chart = grouped_bars([p["period"] for p in months], [(n, c, [p[n] for p in months]) for n, c in SERIES],
                         ("answer ratio", "#2563eb", [p["answer_ratio"] for p in months]),
                         title=f"Calls to {y['service']['number']} per month, {f['year']}")
    return page(request, "report_year.html", f=f, y=y, m=m, figures=figures(y), head=HEAD, nth=ordinal(f["every"]),
                months=rows(months, "period"), cities=rows(y["cities"], "key"),
                milestones=_milestone_rows(m), chart=chart, **common)


@router.get("/reports/year.csv")
def year_csv(request: Request, s: PageDb, who: FleetViewer) -> Response:
    f = _filters(s, request.query_params)
    y, m = _data(s, f)
    table = [["Figure", "Value"], *figures(y)]
    for title, body in (("Month", rows(y["months"], "period")), ("City", rows(y["cities"], "key"))):
        table += [[], [title, *HEAD], *body]
    table += [[], [f"Every {ordinal(f['every'])} call", "Local time", "City", "Gateway", "Port", "Outcome"],
              *_milestone_rows(m)]
    return csv_download(table, f"year-{f['service']}-{f['year']}.csv")
