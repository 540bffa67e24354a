"""Menus and probes end to end on the real firmware: configured through the API of the controller service
(real Mosquitto, SQLite), compiled, rolled out to an emulated 4-GSM board; a caller pressing 2 reaches the
option's centre and the stored record keeps `option` (reported per key), also when the key comes the moment
the menu answers; a caller pressing nothing gets the operator; the board's own scheduled probe of an
unreachable centre opens an alert, a probe that rings (the `probe` command) resolves it and shows its
post-dial delay."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller import reference
from controller.api.app import create_app
from controller.auth import create_token, create_user
from controller.models import Alert, Record, Route, Service
from tests.conditions import until
from tests.controller.board_world import GW, board, controller, roll_out, seed

pytestmark = pytest.mark.slow
API = "/api/v1"
NUMBER = {code: c["number"] for code, c in reference.CENTRES.items()}


@pytest.fixture
def world(tmp_path):
    with controller(tmp_path) as service:
        with service.db.session() as s:
            key = seed(s, out_ports=["gsm2", "gsm4"])
            info = s.scalars(select(Service.id).where(Service.number == "505")).one()
            for r in s.scalars(select(Route).where(Route.service_id == info)):
                r.hours = r.after_hours = None  # open whatever the hour this test runs at
            token = create_token(s, create_user(s, "admin-e2e", "admin"), "tests")
        with board(service, key, tmp_path) as rig:
            rig.network.set_time(time.time())  # the tables' issued_at is now: the board's clock floor
            for number in NUMBER.values():
                rig.network.destination(number, answer_after_s=0.3, talk_s=1)
            rig.network.destination(NUMBER["mariupol-reserve"], unreachable=True)  # its lines are down
            rig.power_on()
            with TestClient(create_app(service.db, service.bridge, service.settings)) as client:
                client.headers["Authorization"] = f"Bearer {token}"
                r = client.post(f"{API}/menus", json={
                    "name": "info-menu", "service_id": info, "prompt": "info-menu", "timeout_s": 3, "tries": 1,
                    "default_option": "0", "options": {"0": {"label": "operator", "targets": ["info-505"]},
                                                       "2": {"label": "police", "targets": ["mariupol-102"]}}})
                assert r.status_code == 201, r.text
                r = client.put(f"{API}/probes/schedules/mariupol-reserve", json={"every_s": 600, "alert_after": 1})
                assert r.status_code == 200, r.text
                roll_out(service)
                yield service, rig, client


def _call(service, caller: str) -> Record | None:
    with service.db.session() as s:
        rec = s.scalars(select(Record).where(Record.kind == "call", Record.caller == caller)).first()
        if rec is not None:
            s.expunge(rec)
        return rec


def test_menu_keys_reach_their_centre_and_unreachable_probes_alert(world):
    service, rig, client = world
    pressed = rig.network.call("gsm3", "+380671000002", keys="2", keys_after_s=0.5).wait(60)
    silent = rig.network.call("gsm3", "+380671000000").wait(60)
    assert (pressed["connected_to"], silent["connected_to"]) == (NUMBER["mariupol-102"], NUMBER["info-505"])
    # a key pressed the moment the caller is answered can reach the board in one read with ATA's OK
    at_once = [f"+38067100001{i}" for i in range(4)]
    heard = [rig.network.call("gsm3", c, keys="2", keys_after_s=0).wait(60)["connected_to"] for c in at_once]
    assert heard == [NUMBER["mariupol-102"]] * 4, "a key pressed as the menu answers was lost"
    two = until(lambda: _call(service, "+380671000002"), 30, "the record of the call that pressed 2")
    none = until(lambda: _call(service, "+380671000000"), 30, "the record of the call that pressed nothing")
    assert (two.route, two.option, two.target, two.outcome) == ("info-505", "2", "mariupol-102", "answered")
    assert (none.option, none.target) == ("0", "info-505")
    until(lambda: all(_call(service, c) for c in at_once), 30, "the records of the calls that pressed 2 at once")
    report = client.get(f"{API}/reports/calls", params={"group": "option", "route": "info-505"}).json()
    assert {t["key"]: t["answered"] for t in report["totals"]} == {"0": 1, "2": 5}

    # the board probes the unreachable centre by itself (its schedule, first ~10 s after the table)
    alert = until(lambda: _open_probe_alert(service), 60, "the probe_failed alert")
    assert alert.startswith("mariupol-reserve:")
    status = client.get(f"{API}/probes/status", params={"centre": "mariupol-reserve"}).json()
    assert [(x["gateway"], x["outcome"], x["failed_in_a_row"]) for x in status] == [(GW, "unreachable", 1)]
    rig.network.destination(NUMBER["mariupol-reserve"], answer_after_s=5, talk_s=1, alert_after_s=0.4)
    r = client.post(f"{API}/gateways/{GW}/commands", json={"op": "probe", "args": {"target": "mariupol-reserve"}})
    assert r.status_code == 200 and r.json()["ok"], r.text
    until(lambda: _open_probe_alert(service) is None, 30, "the alert resolved by a probe that rang")
    last = client.get(f"{API}/probes/status", params={"centre": "mariupol-reserve"}).json()[0]
    assert last["outcome"] == "ringing" and 300 <= last["pdd_ms"] <= 3000, last
    never_answered = [t for t in rig.network.truth() if t["dir"] == "out"
                      and t["number"] == NUMBER["mariupol-reserve"] and t["answer"] is not None]
    assert never_answered == [], "a probe hangs up while it rings: no operator is disturbed"


def _open_probe_alert(service) -> str | None:
    with service.db.session() as s:
        a = s.scalars(select(Alert).where(Alert.code == "probe_failed", Alert.resolved_at.is_(None))).first()
        return a.detail if a else None
