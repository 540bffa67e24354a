"""Reports in the browser: calls the board recorded, counted per route and local day (Europe/Kyiv: a call at
00:30 local is the next day's, though UTC still says the day before); the SVG chart has four bars per day
of the window; the CSV download is the table, cell for cell; a bad filter is named."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from controller.ingest.records import write_batch
from protocols import messages
from tests.controller.web.conftest import BROWSER, GW, download_csv, shot, sign_in

pytestmark = BROWSER
KYIV = ZoneInfo("Europe/Kyiv")
DOCS = Path(__file__).resolve().parents[3] / "docs"


def _calls(world, store: str, calls: list[tuple]) -> None:
    """(local time, route, outcome, talk_s) as gw-mariupol-1 would have recorded them."""
    records = [messages.call_record(n, int(datetime(*at, tzinfo=KYIV).timestamp()), "gsm1", "+380671234567", route,
                                    outcome, "centre-102", 1, 5, talk, "ok")
               for n, (at, route, outcome, talk) in enumerate(calls, 1)]
    with world.service.db.session() as s:
        write_batch(s, [(GW, "events", messages.events(store, records))], {"records": 0, "duplicates": 0})


def _table(page) -> list[list[str]]:
    return [[c.strip() for c in row.locator("th, td").all_text_contents()]
            for row in page.locator("#report tr").all()]


def test_a_report_with_its_chart_and_csv(world, browser, tmp_path):
    _calls(world, "st-report-1", [
        ((2025, 3, 10, 10, 0), "police-102", "answered", 60),
        ((2025, 3, 10, 10, 5), "police-102", "answered", 30),
        ((2025, 3, 10, 11, 0), "police-102", "abandoned", 0),
        ((2025, 3, 11, 0, 30), "police-102", "failed", 0),  # UTC: 10 March, 22:30
        ((2025, 3, 12, 15, 0), "ambulance-103", "answered", 45)])
    page = sign_in(browser, world, "vera")
    page.click("header nav >> text=Reports")
    page.wait_for_url("**/reports")
    page.select_option("select[name=group]", "route")
    page.select_option("select[name=interval]", "day")
    page.fill("input[name=from]", "2025-03-10")
    page.fill("input[name=to]", "2025-03-12")
    page.click("#report-filters button[type=submit]")
    page.wait_for_selector("#report")
    assert page.locator("svg.chart rect.bar").count() == 3 * 4, "offered, answered, abandoned, unanswered a day"
    offered = page.locator("svg.chart rect.bar[data-series=offered][data-period='2025-03-10']")
    assert float(offered.get_attribute("height")) > 0
    assert float(page.locator("svg.chart rect.bar[data-series=offered][data-period='2025-03-11']")
                 .get_attribute("height")) < float(offered.get_attribute("height"))
    assert page.locator("svg.chart polyline.ratio").count() == 1
    assert page.locator("svg.chart rect.talk").count() == 3, "talk time a day"
    assert page.locator("svg.chart polyline.level").count() == 1, "the service level"
    table = _table(page)
    assert table == [
        ["Period", "Route", "Offered", "Answered", "Abandoned", "Unanswered", "Answer ratio", "Talk (s)",
         "Service level (20 s)", "Average talk (s)"],
        ["2025-03-10", "police-102", "3", "2", "1", "0", "66.7%", "90", "66.7%", "45.0"],
        ["2025-03-11", "police-102", "1", "0", "0", "1", "0.0%", "0", "0.0%", ""],
        ["2025-03-12", "ambulance-103", "1", "1", "0", "0", "100.0%", "45", "100.0%", "45.0"]]
    shot(page, "reports")
    assert download_csv(page, "#csv", tmp_path / "report.csv") == ("calls-route-day-2025-03-10-2025-03-12.csv", table)


def test_a_bad_filter_is_named(world, browser):
    page = sign_in(browser, world, "otto")
    for query, field in (("interval=week", "interval"), ("group=caller", "group"), ("from=2025-02-30", "from"),
                         ("from=2025-03-10&to=2025-03-01", "to"), ("city=Atlantis", "city"),
                         ("interval=hour&from=2025-01-01&to=2025-12-31", "to"), ("to=%27%3Cb%3E", "to")):
        response = page.goto(f"{world.url}/reports?{query}")
        assert response.status == 422, query
        assert page.inner_text("#error").startswith(f"{field}:"), query
        assert page.locator("svg.chart").count() == 0
        response = page.goto(f"{world.url}/reports.csv?{query}")
        assert response.status == 422 and field in page.inner_text("#problem"), query


def test_a_fortnight_by_day_for_the_readme(world, browser):
    """A busier window (the README's screenshot, docs/report.png): every day its calls, some lost."""
    calls = []
    for day in range(1, 15):
        for n in range(8 + (day * 7) % 11):
            outcome = ("answered", "answered", "answered", "abandoned", "answered", "failed")[(n + day) % 6]
            calls.append(((2025, 2, day, 8 + n % 12, n), "police-102" if n % 3 else "ambulance-103", outcome,
                          40 + n if outcome == "answered" else 0))
    _calls(world, "st-report-2", calls)
    page = sign_in(browser, world, "ann")
    page.goto(f"{world.url}/reports?group=route&interval=day&from=2025-02-01&to=2025-02-14")
    assert page.locator("svg.chart rect.bar").count() == 14 * 4
    table = _table(page)
    assert sum(int(r[2]) for r in table[1:]) == len(calls)
    path = shot(page, "reports-fortnight")
    if os.environ.get("CITYGATE_DOCS_SCREENSHOT"):  # refresh docs/report.png from a run (as docs/fleet.png)
        shutil.copyfile(path, DOCS / "report.png")
