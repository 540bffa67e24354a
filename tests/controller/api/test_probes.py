"""Probe calls (issue 11 §4, controller side): a schedule per centre (off by default) compiled into the
`probes` of the tables that dial it, refused naming the field; probe records stored, the last result and
post-dial delay per centre and gateway, and an alert after N failed probes in a row that resolves itself."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from controller.compiler import latest_table
from controller.ingest.records import write_batch
from controller.models import Alert
from protocols import messages
from tests.controller.api.conftest import fields

API = "/api/v1"
T0 = 1470052800
HOURS = [{"days": "12345", "start": "08:00", "end": "18:00"}]


def probes_of(db, gw: str) -> list | None:
    with db.session() as s:
        return json.loads(latest_table(s, gw).body).get("probes")


def probe(seq: int, outcome: str, target: str = "info-505", pdd: int | None = 2100) -> dict:
    return {"seq": seq, "t": "probe", "start": T0 + seq * 3600, "target": target, "port": "gsm2",
            "outcome": outcome, "pdd_ms": pdd if outcome == "ringing" else None}


def store(db, gw: str, records: list[dict]) -> None:
    with db.session() as s:
        write_batch(s, [(gw, "events", messages.events("st-probe", records))], {"records": 0, "duplicates": 0})


def open_alerts(db, gw: str) -> list[Alert]:
    with db.session() as s:
        rows = list(s.scalars(select(Alert).where(Alert.gateway_id == gw, Alert.code == "probe_failed")
                              .order_by(Alert.id)))
        s.expunge_all()
        return rows


def test_probes_are_off_until_a_schedule_says_otherwise(client, db, operator, viewer):
    assert probes_of(db, "gw-mariupol-1") is None
    assert client.get(f"{API}/probes/schedules", headers=viewer).json() == []
    r = client.get(f"{API}/probes/schedules/info-505", headers=viewer)
    assert r.status_code == 404 and fields(r) == ["centre"]
    assert client.put(f"{API}/probes/schedules/info-505", json={}, headers=viewer).status_code == 403
    r = client.put(f"{API}/probes/schedules/info-505", json={"hours": HOURS, "alert_after": 2}, headers=operator)
    assert r.status_code == 200, r.text
    assert r.json() == {"centre": "info-505", "every_s": 3600, "hours": HOURS, "alert_after": 2, "enabled": True}
    for gw in ("gw-mariupol-1", "gw-toretsk-1"):  # every gateway that dials the centre
        assert probes_of(db, gw) == [{"target": "info-505", "every_s": 3600, "hours": HOURS}]
    r = client.put(f"{API}/probes/schedules/info-505", json={"every_s": 1800}, headers=operator)
    assert r.json()["hours"] == HOURS and probes_of(db, "gw-mariupol-1")[0]["every_s"] == 1800
    r = client.put(f"{API}/probes/schedules/mariupol-102", json={"enabled": False}, headers=operator)
    assert r.status_code == 200 and probes_of(db, "gw-mariupol-1") == [
        {"target": "info-505", "every_s": 1800, "hours": HOURS}]  # a disabled schedule probes nothing
    assert client.delete(f"{API}/probes/schedules/mariupol-102", headers=operator).status_code == 204
    assert [p["centre"] for p in client.get(f"{API}/probes/schedules", headers=viewer).json()] == ["info-505"]


@pytest.mark.parametrize(("body", "field"), [
    ({"every_s": 60}, "schedules.every_s"),
    ({"hours": [{"days": "12345", "start": "08:00", "end": "25:00"}]}, "schedules.hours[0].end"),
    ({"hours": [{"days": "9", "start": "08:00", "end": "18:00"}]}, "schedules.hours[0].days"),
    ({"alert_after": 0}, "schedules.alert_after"),
    ({"often": True}, "schedules.often"),
])
def test_bad_schedules_are_refused_naming_the_field(client, operator, body, field):
    r = client.put(f"{API}/probes/schedules/mariupol-reserve", json=body, headers=operator)
    assert r.status_code == 422, r.text
    assert fields(r) == [field]


def test_an_unknown_centre_is_404(client, operator):
    r = client.put(f"{API}/probes/schedules/nowhere", json={}, headers=operator)
    assert r.status_code == 404 and fields(r) == ["centre"]


def test_failed_probes_in_a_row_open_an_alert_and_a_ring_resolves_it(client, db, viewer, technician):
    gw = "gw-mariupol-1"
    store(db, gw, [probe(1, "ringing", pdd=1800), probe(2, "no_answer")])
    assert open_alerts(db, gw) == []  # alert_after is 2: one failure is not yet an outage
    status = client.get(f"{API}/probes/status", params={"centre": "info-505"}, headers=technician).json()
    assert [(x["gateway"], x["outcome"], x["pdd_ms"], x["failed_in_a_row"]) for x in status] == [
        (gw, "no_answer", None, 1)]
    store(db, gw, [probe(3, "denied"), probe(4, "unreachable")])  # denied says nothing about the centre
    alerts = open_alerts(db, gw)
    assert len(alerts) == 1 and alerts[0].resolved_at is None and alerts[0].detail.startswith("info-505:")
    store(db, gw, [probe(5, "failed")])
    assert len(open_alerts(db, gw)) == 1  # still the one alert
    store(db, gw, [probe(6, "ringing", pdd=2500)])
    alerts = open_alerts(db, gw)
    assert len(alerts) == 1 and alerts[0].resolved_at == T0 + 6 * 3600
    status = client.get(f"{API}/probes/status", params={"gateway": gw}, headers=viewer).json()
    assert [(x["centre"], x["outcome"], x["pdd_ms"], x["failed_in_a_row"], x["utc"]) for x in status] == [
        ("info-505", "ringing", 2500, 0, "2016-08-01T18:00:00Z")]
    store(db, gw, [probe(5, "failed")])  # a repeated record is stored once and opens nothing
    assert len(open_alerts(db, gw)) == 1
    assert client.get(f"{API}/calls", params={"kind": "call"}, headers=viewer).json()["count"] == 0
