"""Reports, the call list and its CSV export, the call-back queue and alerts, on records inserted here."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from controller.ingest.records import write_batch
from controller.models import Alert, Record
from protocols import messages
from tests.controller.api.conftest import fields

API = "/api/v1"


def ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


# (gateway, start, outcome, route, target, talk_s, caller)
CALLS = [
    ("gw-mariupol-1", "2016-07-31T22:10", "answered", "police-102", "mariupol-102", 60, "+380671111111"),
    ("gw-mariupol-1", "2016-07-31T22:20", "abandoned", "police-102", "mariupol-102", 0, "+380671111112"),
    ("gw-mariupol-1", "2016-07-31T23:05", "answered", "police-102", "mariupol-reserve", 120, "+380671111113"),
    ("gw-mariupol-1", "2016-08-01T00:30", "callback", "police-102", None, 0, "+380671111114"),
    ("gw-mariupol-1", "2016-08-01T01:00", "failed", "info-505", "info-505", 0, "=HYPERLINK(\"x\")"),
    ("gw-toretsk-1", "2016-07-31T22:15", "rejected", "police-102", None, 0, "+380624711111"),
    ("gw-toretsk-1", "2016-08-01T00:10", "after_hours", "info-505", None, 0, "+380624711112"),
    ("gw-toretsk-1", "2016-08-01T00:20", "callback", "info-505", None, 0, "+380624711113"),
    ("gw-toretsk-1", "2016-08-02T08:00", "denied", "old-donetsk-line", None, 0, "+380624711114"),
    ("gw-toretsk-1", "2016-08-02T09:00", "answered", "police-102", "mariupol-102", 30, "+380624711115"),
]


@pytest.fixture(scope="module")
def ids(db) -> list[int]:
    """The calls go in through the bridge's own batch writer, which also keeps the hourly aggregates."""
    by_gw: dict[str, list[dict]] = {}
    for seq, (gw, start, outcome, route, target, talk, caller) in enumerate(CALLS, 1):
        by_gw.setdefault(gw, []).append(
            {"seq": seq, "t": "call", "start": ts(start), "port": "gsm1", "caller": caller, "route": route,
             "outcome": outcome, "target": target, "attempts": 1, "ring_s": 5, "talk_s": talk, "reason": "ok"})
    by_gw["gw-toretsk-1"].append({"seq": 99, "t": "counters", "at": ts("2016-08-01T00:00"), "routes": {},
                                  "targets": {}})
    stats = {"records": 0, "duplicates": 0}
    with db.session() as s:
        write_batch(s, [(gw, "events", messages.events("st-1", recs)) for gw, recs in by_gw.items()], stats)
    assert stats == {"records": len(CALLS) + 1, "duplicates": 0}
    with db.session() as s:
        s.add_all([Alert(gateway_id="gw-toretsk-1", code="table_rejected", detail="sig", created_at=100,
                         resolved_at=150),
                   Alert(gateway_id="gw-toretsk-1", code="port_down", detail="gsm1", created_at=200),
                   Alert(gateway_id="gw-mariupol-1", code="bad_message", detail="x", created_at=300)])
        return list(s.scalars(select(Record.id).where(Record.kind == "call").order_by(Record.seq)))


def report(client, headers, **params) -> dict:
    r = client.get(f"{API}/reports/calls", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_monthly_report_per_city(client, viewer, ids):
    rep = report(client, viewer, group="city", interval="month")
    rows = {(r["key"], r["period"]): r for r in rep["rows"]}
    assert sorted(rows) == [("Mariupol", "2016-07"), ("Mariupol", "2016-08"), ("Toretsk", "2016-07"),
                            ("Toretsk", "2016-08")]
    july = rows[("Mariupol", "2016-07")]
    assert {k: july[k] for k in ("offered", "answered", "abandoned", "failed", "rejected", "after_hours", "callback",
                                 "denied", "talk_s")} == {"offered": 3, "answered": 2, "abandoned": 1, "failed": 0,
                                                          "rejected": 0, "after_hours": 0, "callback": 0,
                                                          "denied": 0, "talk_s": 180}
    assert (july["answer_ratio"], july["avg_talk_s"], july["abandon_ratio"]) == (0.6667, 90.0, 0.3333)
    assert july["start"] == ts("2016-07-01T00:00")
    aug = rows[("Toretsk", "2016-08")]
    assert (aug["offered"], aug["after_hours"], aug["callback"], aug["denied"], aug["answered"]) == (4, 1, 1, 1, 1)
    assert aug["answer_ratio"] == 0.25 and aug["avg_talk_s"] == 30.0
    assert rows[("Toretsk", "2016-07")]["avg_talk_s"] is None  # nothing answered
    totals = {t["key"]: t for t in rep["totals"]}
    assert totals["Mariupol"]["offered"] == 5 and totals["Toretsk"]["offered"] == 5
    assert totals["Mariupol"]["answer_ratio"] == 0.4


def test_hourly_report_per_gateway_within_a_window(client, operator, ids):
    rep = report(client, operator, group="gateway", interval="hour", **{"from": "2016-07-31T22:00:00Z",
                                                                         "to": str(ts("2016-07-31T23:00"))})
    assert [(r["key"], r["period"], r["offered"]) for r in rep["rows"]] == [
        ("gw-mariupol-1", "2016-07-31T22:00Z", 2), ("gw-toretsk-1", "2016-07-31T22:00Z", 1)]
    assert rep["from"] == ts("2016-07-31T22:00") and rep["to"] == ts("2016-07-31T23:00")


def test_daily_report_per_target_and_route(client, viewer, ids):
    rep = report(client, viewer, group="target", interval="day")
    got = {(r["key"], r["period"]): r["offered"] for r in rep["rows"]}
    assert got[("mariupol-102", "2016-07-31")] == 2 and got[("mariupol-102", "2016-08-02")] == 1
    assert got[("mariupol-reserve", "2016-07-31")] == 1 and got[("info-505", "2016-08-01")] == 1
    assert got[(None, "2016-08-01")] == 3  # calls no centre took
    rep = report(client, viewer, group="route", interval="day", **{"from": "2016-08-01", "to": "2016-08-02"})
    assert {(r["key"], r["offered"]) for r in rep["rows"]} == {("police-102", 1), ("info-505", 3)}


def test_report_parameters_are_checked(client, viewer):
    r = client.get(f"{API}/reports/calls", params={"group": "planet"}, headers=viewer)
    assert r.status_code == 422 and fields(r) == ["group"]
    r = client.get(f"{API}/reports/calls", params={"interval": "week", "from": "soon"}, headers=viewer)
    assert r.status_code == 422 and fields(r) == ["interval"]
    r = client.get(f"{API}/reports/calls", params={"from": "soon"}, headers=viewer)
    assert r.status_code == 422 and fields(r) == ["from"]


def test_calls_with_filters(client, viewer, ids):
    r = client.get(f"{API}/calls", params={"gateway": "gw-toretsk-1"}, headers=viewer).json()
    assert r["count"] == 5 and [c["at"] for c in r["data"]] == sorted((c["at"] for c in r["data"]), reverse=True)
    r = client.get(f"{API}/calls", params={"city": "Mariupol", "outcome": "answered"}, headers=viewer).json()
    assert [c["id"] for c in r["data"]] == [ids[2], ids[0]] and r["data"][0]["city"] == "Mariupol"
    assert r["data"][0]["utc"] == "2016-07-31T23:05:00Z" and r["data"][0]["talk_s"] == 120
    r = client.get(f"{API}/calls", params={"route": "info-505", "target": "info-505"}, headers=viewer).json()
    assert [c["id"] for c in r["data"]] == [ids[4]]
    r = client.get(f"{API}/calls", params={"from": "2016-08-01T00:00Z", "to": "2016-08-02T00:00Z", "limit": 2,
                                           "offset": 1}, headers=viewer).json()
    assert r["count"] == 4 and [c["id"] for c in r["data"]] == [ids[3], ids[7]]
    r = client.get(f"{API}/calls", params={"limit": 5000}, headers=viewer)
    assert r.status_code == 422 and fields(r) == ["limit"]


def test_calls_csv_export(client, operator, ids):
    r = client.get(f"{API}/calls", params={"format": "csv", "gateway": "gw-mariupol-1"}, headers=operator)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 5 and list(rows[0]) == ["id", "gateway", "city", "at", "utc", "port", "caller", "route",
                                                "outcome", "target", "attempts", "ring_s", "talk_s", "reason",
                                                "callback_done_at", "kind", "option", "agent",
                                                "callback_attempts"]
    by_id = {int(row["id"]): row for row in rows}
    assert by_id[ids[0]]["caller"] == "+380671111111" and by_id[ids[0]]["talk_s"] == "60"
    assert by_id[ids[0]]["city"] == "Mariupol" and by_id[ids[0]]["at"] == str(ts("2016-07-31T22:10"))
    assert by_id[ids[3]]["target"] == ""
    assert by_id[ids[4]]["caller"] == "'=HYPERLINK(\"x\")"  # never a formula in a spreadsheet


def test_callback_queue(client, operator, viewer, ids):
    queue = client.get(f"{API}/callbacks", headers=viewer).json()
    assert [c["id"] for c in queue["data"]] == [ids[7], ids[3]] and queue["count"] == 2  # oldest first
    r = client.post(f"{API}/callbacks/{ids[7]}/done", headers=operator)
    assert r.status_code == 200 and r.json()["callback_done_at"] is not None
    done_at = r.json()["callback_done_at"]
    assert [c["id"] for c in client.get(f"{API}/callbacks", headers=viewer).json()["data"]] == [ids[3]]
    assert client.post(f"{API}/callbacks/{ids[7]}/done", headers=operator).json()["callback_done_at"] == done_at
    r = client.post(f"{API}/callbacks/{ids[0]}/done", headers=operator)  # answered: not a call-back
    assert r.status_code == 404 and fields(r) == ["call_id"]
    assert client.get(f"{API}/callbacks", params={"gateway": "gw-toretsk-1"}, headers=viewer).json()["count"] == 0


def test_alerts_unresolved_first(client, technician, viewer, ids):
    codes = [a["code"] for a in client.get(f"{API}/alerts", headers=viewer).json()["data"]]
    assert codes == ["bad_message", "port_down", "table_rejected"]
    port_down = client.get(f"{API}/alerts", params={"gateway": "gw-toretsk-1", "resolved": False},
                           headers=viewer).json()["data"]
    assert [a["code"] for a in port_down] == ["port_down"]
    r = client.post(f"{API}/alerts/{port_down[0]['id']}/resolve", headers=technician)
    assert r.status_code == 200 and r.json()["resolved_at"] is not None
    listed = client.get(f"{API}/alerts", headers=viewer).json()
    assert [a["code"] for a in listed["data"]] == ["bad_message", "port_down", "table_rejected"]
    assert [a["resolved_at"] is None for a in listed["data"]] == [True, False, False]
    assert client.get(f"{API}/alerts", params={"resolved": False}, headers=viewer).json()["count"] == 1
    assert client.post(f"{API}/alerts/999999/resolve", headers=technician).status_code == 404


@pytest.mark.parametrize("group", ["city", "gateway", "route", "target"])
@pytest.mark.parametrize("interval", ["hour", "day", "month"])
def test_hourly_aggregates_give_the_same_report_as_the_records(client, viewer, ids, group, interval):
    """Whole-hour windows are summed from `call_hours`; a window one second off is counted from the records."""
    lo, hi = ts("2016-07-31T00:00"), ts("2016-08-03T00:00")
    from_aggregates = report(client, viewer, group=group, interval=interval, **{"from": lo, "to": hi})
    from_records = report(client, viewer, group=group, interval=interval, **{"from": lo + 1, "to": hi - 1})
    assert from_aggregates["rows"] == from_records["rows"]
    assert from_aggregates["totals"] == from_records["totals"]
    assert sum(t["offered"] for t in from_aggregates["totals"]) == len(CALLS)
