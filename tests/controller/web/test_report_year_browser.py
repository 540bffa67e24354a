"""A service's year in the browser: from the Reports page to the 505 line's year (local Kyiv time), its key
figures, the month chart (four bars a month), the tables per month and city, the milestones of the year;
the CSV download holds the key figures as the page shows them; a bad year is named."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from controller.ingest.records import write_batch
from protocols import messages
from tests.controller.web.conftest import BROWSER, GW, download_csv, shot, sign_in

pytestmark = BROWSER
KYIV = ZoneInfo("Europe/Kyiv")
# 505 calls (gsm3) of gw-mariupol-1 in local 2024: (local time, outcome, ring_s, talk_s)
CALLS = [((2024, 1, 1, 0, 20), "answered", 4, 100),  # 31 December 2023 in UTC
         ((2024, 5, 6, 9, 5), "answered", 30, 50),
         ((2024, 5, 6, 9, 40), "abandoned", 12, 0),
         ((2024, 5, 7, 14, 0), "answered", 8, 30),
         ((2024, 11, 2, 9, 15), "callback", 45, 0)]


def _store(world) -> None:
    records = [messages.call_record(n, int(datetime(*at, tzinfo=KYIV).timestamp()), "gsm3", f"+3806700000{n:02d}",
                                    "info-505", outcome, None, 1, ring, talk, "ok")
               for n, (at, outcome, ring, talk) in enumerate(CALLS, 1)]
    with world.service.db.session() as s:
        write_batch(s, [(GW, "events", messages.events("st-year-browser", records))], {"records": 0, "duplicates": 0})


def _figures(page) -> dict[str, str]:
    return {row.locator("td").nth(0).inner_text().strip(): row.locator("td").nth(1).inner_text().strip()
            for row in page.locator("#figures tr").all()}


def test_report_year_page_of_the_505_line(world, browser, tmp_path):
    _store(world)
    page = sign_in(browser, world, "vera")
    try:
        _year_page(world, page, tmp_path)
    finally:
        page.context.close()  # its renderer ends with the test


def _year_page(world, page, tmp_path) -> None:
    page.click("header nav >> text=Reports")
    page.wait_for_url("**/reports")
    page.click("text=A service's year")
    page.wait_for_url("**/reports/year")
    page.select_option("select[name=service]", "505")
    page.fill("input[name=year]", "2024")
    page.fill("input[name=every]", "2")
    page.click("#year-filters button[type=submit]")
    page.wait_for_selector("#figures")
    assert page.inner_text("h1") == "505 Citizens' information: 2024"
    figures = _figures(page)
    assert figures["Calls offered"] == "5" and figures["Calls answered"] == "3"
    assert figures["Answer ratio"] == "60.0%" and figures["Service level (answered within 20 s)"] == "40.0%"
    assert figures["Talk time, total"] == "0:03:00" and figures["Talk time, average"] == "60 s"
    assert (figures["Busiest month"], figures["Busiest day"], figures["Busiest hour"]) == (
        "2024-05 (3 calls)", "2024-05-06 (2 calls)", "09:00 (3 calls)")
    assert figures["Call-backs requested"] == "1"
    assert page.locator("svg.chart rect.bar").count() == 12 * 4, "offered, answered, abandoned, unanswered a month"
    assert float(page.locator("svg.chart rect.bar[data-series=offered][data-period='2024-05']")
                 .get_attribute("height")) > 0
    months = [r.locator("td").all_text_contents() for r in page.locator("#months tbody tr").all()]
    assert [m[0] for m in months] == [f"2024-{n:02d}" for n in range(1, 13)]
    assert [m[1] for m in months] == ["1", "0", "0", "0", "3", "0", "0", "0", "0", "0", "1", "0"]
    cities = [r.locator("td").all_text_contents()[:2] for r in page.locator("#cities tbody tr").all()]
    assert cities == [["Mariupol", "5"]]
    milestones = [r.locator("td").all_text_contents() for r in page.locator("#milestones tbody tr").all()]
    assert [m[1:4] for m in milestones] == [["2024-05-06 09:05:00", "Mariupol", GW],
                                            ["2024-05-07 14:00:00", "Mariupol", GW]]
    shot(page, "report-year")
    name, rows = download_csv(page, "#csv", tmp_path / "year.csv")
    assert name == "year-505-2024.csv"
    assert dict(r for r in rows[1:] if len(r) == 2) == figures
    response = page.goto(f"{world.url}/reports/year?service=505&year=1999")
    assert response.status == 422 and page.inner_text("#error").startswith("year:")
