"""The Reports page and its CSV against hostile filters (no browser; SQLite and PostgreSQL): every bad field
is a 422 naming it, never a 5xx; good filters count the same calls on both databases."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import reference
from controller.auth import create_user
from controller.ingest.records import write_batch
from protocols import messages
from tests.controller.databases import KINDS, scratch_database
from tests.controller.web.conftest import console_app, signed_in_client
from tests.controller.web.test_pages_hostile import HOSTILE, _check

FIELDS = ("group", "interval", "from", "to", "city")
PASSWORD = "hostile-reports-pass"
CALLS = [(1765000000, "callback", 0),
         # Kyiv moves from UTC+2 to UTC+3 at 01:00 UTC on 30 March 2025
         (1743287400, "answered", 30),  # 2025-03-29 22:30 UTC = 30 March 00:30 local (+2)
         (1743294600, "answered", 40),  # 2025-03-30 00:30 UTC = 30 March 02:30 local (+2)
         (1743370200, "abandoned", 0)]  # 2025-03-30 21:30 UTC = 31 March 00:30 local (+3)
GOOD = {"group": "city", "interval": "day", "from": "2025-12-01", "to": "2025-12-31"}


@pytest.fixture(params=KINDS, scope="module")
def client(request, tmp_path_factory):
    """Signed in as an admin; CALLS stored as the bridge stores them (the hourly aggregates too) on
    gw-toretsk-1 (Toretsk); 1765000000 = 2025-12-06 05:46 UTC, 07:46 in Kyiv, lost to a call-back."""
    with scratch_database(request.param, tmp_path_factory.mktemp("reports"), "hostile_reports") as db:
        db.upgrade()
        with db.session() as s:
            reference.seed(s)
            create_user(s, "root", "admin", PASSWORD)
            write_batch(s, [("gw-toretsk-1", "events", messages.events("st-r", [messages.call_record(
                n, at, "gsm1", "+380671234567", "police-102", outcome, None, 1, 20, talk, "ok")
                for n, (at, outcome, talk) in enumerate(CALLS, 1)]))], {"records": 0, "duplicates": 0})
        with signed_in_client(console_app(db), "root", PASSWORD) as c:
            yield c


def test_every_hostile_value_of_every_field_is_named(client):
    for field in FIELDS:
        for value in HOSTILE:
            for path in ("/reports", "/reports.csv"):
                r = client.get(f"{path}?{urlencode({**GOOD, field: value})}")
                _check(r, (path, field, value))
                if r.status_code == 422 and (value or field not in ("from", "to")):  # empty: the default date
                    assert f"{field}:" in r.text or f"<code>{field}</code>" in r.text, (path, field, value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=40)))
def test_any_filters_never_a_5xx(client, params):
    for path in ("/reports", "/reports.csv"):
        _check(client.get(f"{path}?{urlencode(params)}"), (path, params))


def test_the_csv_counts_the_stored_call_in_its_local_day(client):
    for city in ("", "Toretsk"):
        r = client.get(f"/reports.csv?{urlencode({**GOOD, 'city': city})}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[1:] == [["2025-12-06", "Toretsk", "1", "0", "0", "1", "0.0%", "0", "0.0%", ""]], city
    r = client.get(f"/reports.csv?{urlencode({**GOOD, 'city': 'Mariupol'})}")
    assert list(csv.reader(io.StringIO(r.text)))[1:] == []


def test_the_routes_page_names_a_city_it_does_not_know(client):
    for value in HOSTILE:
        r = client.get(f"/routes?{urlencode({'city': value})}")
        _check(r, ("/routes", value))
        assert r.status_code == 200 if value in ("",) else r.status_code in (404, 422), value
    r = client.get("/routes?city=Toretsk")
    assert r.status_code == 200 and 'data-gateway="gw-toretsk-1"' in r.text


def test_local_days_and_hours_across_the_change_to_summer_time(client):
    def rows(interval):
        window = {**GOOD, "interval": interval, "from": "2025-03-29", "to": "2025-03-31"}
        r = client.get(f"/reports.csv?{urlencode(window)}")
        assert r.status_code == 200
        return list(csv.reader(io.StringIO(r.text)))[1:]

    assert rows("day") == [["2025-03-30", "Toretsk", "2", "2", "0", "0", "100.0%", "70", "100.0%", "35.0"],
                           ["2025-03-31", "Toretsk", "1", "0", "1", "0", "0.0%", "0", "0.0%", ""]]
    assert [r[0] for r in rows("hour")] == ["2025-03-30 00:00", "2025-03-30 02:00", "2025-03-31 00:00"]
    assert rows("month") == [["2025-03", "Toretsk", "3", "2", "1", "0", "66.7%", "70", "66.7%", "35.0"]]
    page = client.get(f"/reports?{urlencode({**GOOD, 'interval': 'hour', 'from': '2025-03-30', 'to': '2025-03-30'})}")
    assert page.text.count('class="bar"') == 23 * 4, "30 March 2025 has 23 hours in Kyiv"
