"""POST /api/v1/outbound-calls end to end on the real firmware: the controller service (real Mosquitto,
SQLite) picks the citizen's city's gateway with a free out port from the board's own state, the emulated
board's firmware rings the agent, then the citizen, bridges them, and its `outbound` record comes back
through the ingest: stored, listed, reported; a call-back called back this way is marked done."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller.api.app import create_app
from controller.auth import create_token, create_user
from controller.ingest.records import write_batch
from controller.models import Gateway, Record
from protocols import messages
from tests.conditions import until
from tests.controller.board_world import GW, board, controller, gateway, roll_out, seed

pytestmark = pytest.mark.slow
AGENT, CITIZEN = "+380629000505", "+380671234567"  # the 505 desk; a citizen
API = "/api/v1"


@pytest.fixture
def world(tmp_path):
    with controller(tmp_path) as service:
        with service.db.session() as s:
            key = seed(s, out_ports=["gsm2"])
            token = create_token(s, create_user(s, "desk-505", "operator"), "tests")
        with board(service, key, tmp_path) as rig:
            rig.network.destination(AGENT, answer_after_s=0.4, talk_s=6)
            rig.network.destination(CITIZEN, answer_after_s=0.6, talk_s=1.5)
            rig.power_on()
            roll_out(service, ready=_all_ready, version=1)
            with TestClient(create_app(service.db, service.bridge, service.settings)) as client:
                client.headers["Authorization"] = f"Bearer {token}"
                yield service, rig, client


def _all_ready(gw: Gateway) -> bool:
    ports = (gw.state or {}).get("ports") or {}
    return bool(ports) and all(p.get("ready") for p in ports.values())


def legs(rig, number: str) -> list[dict]:
    return [t for t in rig.network.truth() if t["dir"] == "out" and t["number"] == number]


def test_an_operator_calls_a_citizen_through_the_board(world):
    service, rig, client = world
    r = client.post(f"{API}/outbound-calls", json={"agent": AGENT, "citizen": CITIZEN, "city": "Mariupol"})
    assert r.status_code == 202, r.text
    placed = r.json()
    assert (placed["gateway"], placed["via"], placed["result"]["port"]) == (GW, "gsm2", "gsm2")
    ended = until(lambda: client.get(f"{API}/outbound-calls").json()["data"][0]["outcome"], 60, "the call's record")
    assert ended == "answered"
    agent, citizen = until(lambda: (a := legs(rig, AGENT)) and (c := legs(rig, CITIZEN)) and a[0]["end"]
                           and c[0]["end"] and (a[0], c[0]), 30, "both legs ended (ground truth)")
    assert citizen["start"] >= agent["answer"] - 0.2, "the agent first, then the citizen"
    assert citizen["port"] == "gsm2" and agent["port"] != "gsm2"
    calls = client.get(f"{API}/calls", params={"kind": "outbound"}).json()["data"]
    assert [(c["caller"], c["agent"], c["outcome"], c["port"]) for c in calls] == [(CITIZEN, AGENT, "answered", "gsm2")]
    assert abs(calls[0]["talk_s"] - citizen["talk_s"]) <= 1
    rows = client.get(f"{API}/reports/outbound").json()["rows"]
    assert [(x["city"], x["placed"], x["answered"]) for x in rows] == [("Mariupol", 1, 1)]


def test_call_back_now_through_the_board_marks_the_call_back_done(world):
    service, rig, client = world
    # the citizen's call that nobody could take, as the board would have recorded it
    with service.db.session() as s:
        write_batch(s, [(GW, "events", messages.events("st-earlier", [messages.call_record(
            1, int(time.time()) - 900, "gsm1", CITIZEN, "police-102", "callback", None, 2, 50, 0, "all_busy")]))],
            {"records": 0, "duplicates": 0})
    cb = client.get(f"{API}/callbacks").json()["data"][0]
    until(lambda: all(p.get("calls") == 0 for p in (gateway(service).state.get("ports") or {}).values()), 30,
          "the board's lines free")
    r = client.post(f"{API}/callbacks/{cb['id']}/call", json={"agent": AGENT})
    assert r.status_code == 202, r.text
    until(lambda: client.get(f"{API}/callbacks").json()["count"] == 0, 60, "the call-back done")
    with service.db.session() as s:
        done = s.scalars(select(Record).where(Record.id == cb["id"])).one()
        assert done.callback_done_at is not None and done.callback_attempts == 0
