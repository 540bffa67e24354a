"""The API never fails on a stored row (issue 8, findings 2 and 3): call records whose start is no date
(2^40, -2^40, the largest BIGINT) and gateway states of the wrong types, written straight into the
database as older code or a bad gateway left them, are shown (times as the raw integer, their text as
null; a state value of the wrong type as null) by every reader, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient

from controller import web
from controller.api import create_app
from controller.models import CallHour, Gateway, Record
from tests.controller.api.conftest import SETTINGS

API = "/api/v1"
ODD_TIMES = (2**40, -(2**40), 2**63 - 1)
BAD_STATES = ({"online": True, "outbox": "lots"}, {"online": True, "heap_min_free": [1]},
              {"online": True, "ports": {"gsm1": {"kind": "gsm", "csq": "strong"}}},
              {"online": True, "ports": {"gsm1": "up", "gsm2": {"csq": 1.5, "name": 7, "x": {"deep": 1}}},
               "fw": ["1"], "uptime_s": 2**70, "heap_free": True},
              ["not", "an", "object"], "text")


@pytest.fixture(scope="module")
def page_client(db):
    """The API with the overview page's data route, as `citygate serve` mounts them."""
    app = create_app(db, settings=SETTINGS)
    app.include_router(web.router)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def odd_rows(db):
    with db.session() as s:
        for i, at in enumerate(ODD_TIMES):
            for j, outcome in enumerate(("answered", "callback")):
                s.add(Record(gateway_id="gw-toretsk-1", store_id="odd-store", seq=2 * i + j + 1, kind="call", at=at,
                             port="gsm1", caller="+380624711111", route="police-102", outcome=outcome,
                             target="mariupol-102", attempts=1, ring_s=3, talk_s=20, data={}))
            s.add(CallHour(gateway_id="gw-toretsk-1", hour=at // 3600 * 3600, route="police-102",
                           target="mariupol-102", offered=2, answered=1, callback=1, talk_s=20, ring_s=6))


READS = [("/calls", {}), ("/calls", {"format": "csv"}), ("/calls", {"outcome": "callback", "limit": 5}),
         ("/callbacks", {}), ("/callbacks", {"gateway": "gw-toretsk-1"})]
READS += [("/reports/calls", {"group": g, "interval": i, **w}) for g, i, w in itertools.product(
    ("city", "gateway", "route", "target"), ("hour", "day", "month"), ({}, {"from": 1}))]


@pytest.mark.parametrize(("path", "params"), READS, ids=[f"{p}?{q}" for p, q in READS])
def test_reads_show_calls_whose_start_is_no_date(client, viewer, odd_rows, path, params):
    r = client.get(API + path, params=params, headers=viewer)
    assert r.status_code == 200, r.text
    if path == "/calls" and params.get("format") == "csv":
        assert all(str(t) in r.text for t in ODD_TIMES)
    elif path == "/reports/calls":
        report = r.json()
        odd = [row for row in report["rows"] if row["start"] in {t // 86400 * 86400 for t in ODD_TIMES}
               or row["period"] is None]
        assert odd and all(row["period"] is None for row in odd)
        counted = [t for t in ODD_TIMES if t >= params.get("from", -(2**63))]
        assert sum(t["offered"] for t in report["totals"]) >= 2 * len(counted)
    else:
        shown = {c["at"]: c["utc"] for c in r.json()["data"] if c["at"] in ODD_TIMES}
        assert shown and set(shown.values()) == {None}


def test_overview_shows_calls_whose_start_is_no_date(page_client, viewer, odd_rows):
    r = page_client.get(f"{API}/overview", params={"since": 0}, headers=viewer)
    assert r.status_code == 200, r.text
    assert sum(c["offered"] for c in r.json()["cities"]) >= 4  # 2^40 and 2^63-1 are after `since`


@pytest.mark.parametrize("state", BAD_STATES, ids=[str(s)[:40] for s in BAD_STATES])
def test_fleet_reads_a_state_of_the_wrong_types(db, client, page_client, viewer, state):
    with db.session() as s:
        s.get(Gateway, "gw-sloviansk-1").state = state
    listed = client.get(f"{API}/gateways", headers=viewer)
    assert listed.status_code == 200, listed.text
    one = client.get(f"{API}/gateways/gw-sloviansk-1", headers=viewer)
    assert one.status_code == 200, one.text
    g = one.json()
    assert g in listed.json()["data"]
    for name in ("outbox", "heap_min_free", "heap_free", "uptime_s", "fw"):
        assert g[name] is None, (name, g[name])
    assert all(v is None for v in g["signal"].values())
    ports = {p["name"]: p for p in g["ports"]}
    assert all(isinstance(p["name"], str) and p["out"] in (True, False) for p in ports.values())
    assert all(not isinstance(v, dict | list | float) for p in ports.values() for v in p.values())
    page = page_client.get(f"{API}/overview", headers=viewer)
    assert page.status_code == 200, page.text
    shown = next(x for x in page.json()["gateways"] if x["id"] == "gw-sloviansk-1")
    assert shown["outbox"] is None and all(v is None for v in shown["signal"].values())


def test_fleet_reads_a_good_state_after_a_bad_one(db, client, viewer):
    with db.session() as s:
        s.get(Gateway, "gw-sloviansk-1").state = {"online": True, "outbox": 3, "heap_min_free": 9000,
                                                  "ports": {"gsm1": {"kind": "gsm", "csq": 17}}}
    g = client.get(f"{API}/gateways/gw-sloviansk-1", headers=viewer).json()
    assert (g["outbox"], g["heap_min_free"], g["signal"]) == (3, 9000, {"gsm1": 17})


def test_overview_follows_the_roles_of_the_reports(page_client, tokens):
    from tests.controller.api.conftest import auth

    for role, status in (("admin", 200), ("operator", 200), ("viewer", 200), ("technician", 403)):
        r = page_client.get(f"{API}/overview", headers=auth(tokens[role]))
        assert r.status_code == status, (role, r.text)
    r = page_client.get(f"{API}/overview", headers=auth(tokens["technician"]))
    assert r.json()["detail"][0]["field"] == "role" and "cities" not in r.text
