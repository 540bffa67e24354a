"""The year report, milestones, service level and privacy through the API and the pages (no browser; SQLite and
PostgreSQL): figures as the services count them, every bad parameter a 4xx naming it (never a 5xx), callers'
numbers masked for viewers only (tests/controller/report_data.py holds the calls)."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.app import create_app
from controller.auth import create_token, create_user
from controller.settings import Settings
from controller.web.report_year import HEAD
from tests.controller.databases import KINDS, scratch_database
from tests.controller.report_data import CALLS, store_calls
from tests.controller.web.conftest import console_app, signed_in_client
from tests.controller.web.test_pages_hostile import HOSTILE, _check

API = "/api/v1"
PASSWORDS = {"root": "report-year-admin", "vera": "report-year-viewer"}
YEAR = {"service": "505", "year": "2025"}


@pytest.fixture(params=KINDS, scope="module")
def world(request, tmp_path_factory):
    """{"db", "admin", "viewer": page clients; "tokens": {role: header}; "app"}."""
    with scratch_database(request.param, tmp_path_factory.mktemp("year"), "report_year_pages") as db:
        db.upgrade()
        with db.session() as s:
            store_calls(s)
            root, vera = create_user(s, "root", "admin", PASSWORDS["root"]), create_user(s, "vera", "viewer",
                                                                                         PASSWORDS["vera"])
            tokens = {"admin": create_token(s, root, "t"), "viewer": create_token(s, vera, "t"),
                      "operator": create_token(s, create_user(s, "otto", "operator"), "t")}
        app = console_app(db, settings=Settings(secret_key="s" * 40, broker="mqtt://broker.test:1883"))
        with signed_in_client(app, "root", PASSWORDS["root"]) as admin, \
                signed_in_client(app, "vera", PASSWORDS["vera"]) as viewer:
            yield {"db": db, "app": app, "admin": admin, "viewer": viewer,
                   "tokens": {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}}


def test_api_report_year_and_milestones(world):
    c, h = world["admin"], world["tokens"]["viewer"]
    y = c.get(f"{API}/reports/year", params=YEAR, headers=h).json()
    assert (y["totals"]["offered"], y["totals"]["service_level"]) == (6, 0.5)
    assert y["busiest"]["day"]["period"] == "2025-07-15"
    r = c.get(f"{API}/reports/milestones", params={"service": "505", "every": 3}, headers=h)
    assert r.status_code == 200
    assert [(m["n"], m["city"], m["gateway"]) for m in r.json()["milestones"]] == [
        (3, "Mariupol", "gw-mariupol-1"), (6, "Toretsk", "gw-toretsk-1")]
    calls = c.get(f"{API}/reports/calls", params={"group": "city", "interval": "month", "from": "2025-07-01",
                                                   "to": "2025-08-01", "within_s": 5}, headers=h).json()
    toretsk = next(t for t in calls["totals"] if t["key"] == "Toretsk")
    assert (toretsk["offered"], toretsk["within"], toretsk["service_level"]) == (2, 1, 0.5)
    plain = c.get(f"{API}/reports/calls", params={"from": "2025-07-01", "to": "2025-08-01"}, headers=h).json()
    assert plain["within_s"] is None and "service_level" not in plain["totals"][0]  # the aggregates' fast path
    assert c.get(f"{API}/reports/year", params=YEAR, headers=world["tokens"]["operator"]).status_code == 200
    assert c.get(f"{API}/reports/year", params=YEAR).status_code == 401


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/reports/year", {"service": "505", "year": "1999"}, "year"),
    ("/reports/year", {"service": "505", "year": "twenty"}, "year"),
    ("/reports/year", {"service": "", "year": "2025"}, "service"),
    ("/reports/year", {"year": "2025"}, "service"),
    ("/reports/year", {"service": "505", "within_s": "0"}, "within_s"),
    ("/reports/year", {"service": "x" * 500}, "service"),
    ("/reports/milestones", {"service": "505", "every": "0"}, "every"),
    ("/reports/milestones", {"service": "505", "every": str(2**70)}, "every"),
    ("/reports/milestones", {"service": "505", "limit": "100000"}, "limit"),
    ("/reports/milestones", {"service": "505", "answered": "perhaps"}, "answered"),
    ("/reports/calls", {"within_s": "-3"}, "within_s"),
])
def test_api_report_bad_parameters_are_4xx_naming_the_field(world, path, params, field):
    r = world["admin"].get(API + path, params=params, headers=world["tokens"]["admin"])
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["detail"]]


def test_api_milestones_of_an_unknown_service_are_not_found(world):
    r = world["admin"].get(f"{API}/reports/milestones", params={"service": "999"}, headers=world["tokens"]["admin"])
    assert r.status_code == 404 and r.json()["detail"][0]["field"] == "service"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["service", "year", "within_s", "every", "limit", "answered"]),
                       st.sampled_from(HOSTILE) | st.text(max_size=30)))
def test_report_year_any_parameters_never_a_5xx(world, params):
    for path in (f"{API}/reports/year", f"{API}/reports/milestones"):
        _check(world["admin"].get(path, params=params, headers=world["tokens"]["admin"]), (path, params))
    for path in ("/reports/year", "/reports/year.csv"):
        _check(world["admin"].get(f"{path}?{urlencode(params)}"), (path, params))


def test_report_year_page_and_its_csv(world):
    r = world["viewer"].get(f"/reports/year?{urlencode({**YEAR, 'every': 2})}")
    assert r.status_code == 200
    assert "Citizens&#39; information: 2025" in r.text or "Citizens' information: 2025" in r.text
    assert r.text.count('class="bar"') == 12 * 4
    r = world["viewer"].get(f"/reports/year.csv?{urlencode({**YEAR, 'every': 2})}")
    rows = list(csv.reader(io.StringIO(r.text)))
    figures = dict(r for r in rows[1:14])
    assert figures["Calls offered"] == "6" and figures["Service level (answered within 20 s)"] == "50.0%"
    assert figures["Busiest hour"] == "10:00 (3 calls)" and figures["Talk time, total"] == "0:03:20"
    assert figures["Call-backs made"] == "1" and figures["Call-backs that reached the caller"] == "1"
    months = rows[rows.index(["Month", *HEAD]) + 1:][:12]
    assert [m[1] for m in months] == ["1", "0", "2", "0", "0", "0", "3", "0", "0", "0", "0", "0"]
    cities = rows[rows.index(["City", *HEAD]) + 1:][:3]
    assert [c[:2] for c in cities] == [["Kramatorsk", "1"], ["Mariupol", "3"], ["Toretsk", "2"]]
    # milestones of 2025: the 2nd, 4th and 6th call (the 7th, 2026's, is no milestone)
    assert [m[:3] for m in rows[-3:]] == [["2", "2025-03-30 00:30:00", "Kramatorsk"],
                                          ["4", "2025-07-15 10:10:00", "Mariupol"],
                                          ["6", "2025-07-15 10:55:00", "Toretsk"]]


@pytest.mark.parametrize(("params", "field"), [({"service": "999"}, "service"), ({"year": "1999"}, "year"),
                                               ({"within_s": "0"}, "within_s"), ({"every": "x"}, "every")])
def test_report_year_page_names_a_bad_field(world, params, field):
    for path in ("/reports/year", "/reports/year.csv"):
        r = world["admin"].get(f"{path}?{urlencode({**YEAR, **params})}")
        assert r.status_code == 422 and (f"{field}:" in r.text or f"<code>{field}</code>" in r.text), path


def test_reports_page_draws_talk_time_and_service_level(world):
    q = {"group": "city", "interval": "day", "from": "2025-07-14", "to": "2025-07-16", "within_s": "5"}
    r = world["admin"].get(f"/reports?{urlencode(q)}")
    assert r.status_code == 200
    assert r.text.count('class="talk"') == 3 and r.text.count('class="level"') == 1
    assert r.text.count('class="bar"') == 3 * 4
    rows = list(csv.reader(io.StringIO(world["admin"].get(f"/reports.csv?{urlencode(q)}").text)))
    assert rows[0][-2:] == ["Service level (5 s)", "Average talk (s)"]
    assert rows[1:] == [["2025-07-15", "Mariupol", "2", "2", "0", "0", "100.0%", "150", "50.0%", "75.0"],
                        ["2025-07-15", "Toretsk", "2", "1", "0", "1", "50.0%", "10", "50.0%", "10.0"]]
    r = world["admin"].get(f"/reports?{urlencode({**q, 'within_s': '99999'})}")
    assert r.status_code == 422 and "within_s:" in r.text


def test_privacy_viewers_see_callers_masked(world):
    c, tokens = world["admin"], world["tokens"]
    shown = {role: {x["at"]: x["caller"] for x in c.get(f"{API}/calls", headers=tokens[role]).json()["data"]}
             for role in ("viewer", "operator", "admin")}
    number = CALLS[3][3]  # +380671000004
    assert shown["viewer"][CALLS[3][1]] == "+38067*****04" and shown["operator"][CALLS[3][1]] == number
    assert number not in c.get(f"{API}/calls", params={"format": "csv"}, headers=tokens["viewer"]).text
    assert number in c.get(f"{API}/calls", params={"format": "csv"}, headers=tokens["admin"]).text
    cb = c.get(f"{API}/callbacks", headers=tokens["viewer"]).json()["data"]
    assert all("*" in x["caller"] for x in cb if x["caller"])
    requests = {role: c.get(f"{API}/outbound-calls", headers=tokens[role]).json()["data"] for role in tokens}
    assert [x["citizen"] for x in requests["viewer"]] == ["+38067*****05"]
    assert [x["citizen"] for x in requests["operator"]] == [CALLS[4][3]]
    page = world["viewer"].get("/fleet/gw-mariupol-1").text
    assert "+38067*****04" in page and number not in page
    assert number in world["admin"].get("/fleet/gw-mariupol-1").text


def test_privacy_mask_can_be_turned_off(world):
    app = create_app(world["db"], settings=Settings(secret_key="s" * 40, broker="mqtt://broker.test:1883",
                                                    mask_callers=False))
    with TestClient(app) as c:
        data = c.get(f"{API}/calls", headers=world["tokens"]["viewer"]).json()["data"]
    assert CALLS[3][3] in {x["caller"] for x in data}
