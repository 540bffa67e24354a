"""Operators call citizens (issue 11 §3, controller side) with a gateway stand-in that answers the `call`
command as the contract says (the real broker and board: tests/controller/test_outbound_e2e.py): who may,
which gateway, what is refused naming the field, and how the gateway's `outbound` record settles the
request and the call-back it called back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller import commands
from controller.api import create_app
from controller.ingest.records import write_batch
from controller.models import Gateway, OutboundCall, Record
from controller.services.report_privacy import mask
from protocols import messages
from tests.controller.api.conftest import SETTINGS, fields

API = "/api/v1"
GW = "gw-mariupol-1"
AGENT, CITIZEN = "+380501112233", "+380671234567"
START = 1470052800


class GatewayStandIn:
    """The bridge's `command` as a gateway would answer it: checked args, then `reply` (or an exception)."""

    def __init__(self, db):
        self.db, self.sent, self.reply, self.before_reply = db, [], None, None
        self.n = 0

    def command(self, gateway_id: str, op: str, args: dict | None = None, timeout: float = 20) -> dict:
        args = commands.check(op, args)
        self.n += 1
        cid = f"cmd{self.n:04d}"
        self.sent.append((gateway_id, op, args, cid))
        if isinstance(self.reply, BaseException):
            raise self.reply
        if self.before_reply:
            self.before_reply(gateway_id, cid, args)
        return {"id": cid, **(self.reply or {"ok": True, "result": {"accepted": True}})}


@pytest.fixture(scope="module")
def gateway(db):
    return GatewayStandIn(db)


@pytest.fixture(scope="module")
def client(db, gateway):
    with TestClient(create_app(db, bridge=gateway, settings=SETTINGS)) as c:
        yield c


def store(db, gw: str, records: list[dict], store_id: str = "st-out") -> None:
    with db.session() as s:
        write_batch(s, [(gw, "events", messages.events(store_id, records))], {"records": 0, "duplicates": 0})


def outbound_record(seq: int, cmd: str, outcome: str, citizen: str = CITIZEN, talk: int = 0) -> dict:
    return {"seq": seq, "t": "outbound", "cmd": cmd, "start": START + seq, "port": "gsm2", "agent": AGENT,
            "citizen": citizen, "outcome": outcome, "ring_s": 4, "talk_s": talk}


def set_state(db, gw: str, online: bool, calls: int = 0) -> None:
    with db.session() as s:
        g = s.get(Gateway, gw)
        g.online = online
        g.state = {"online": online, "ports": {"gsm2": {"kind": "gsm", "ready": True, "calls": calls},
                                               "gsm1": {"kind": "gsm", "ready": True, "calls": 0}}}


def test_viewers_may_not_place_calls(client, viewer, technician):
    for who in (viewer, technician):
        r = client.post(f"{API}/outbound-calls", json={"agent": AGENT, "citizen": CITIZEN, "gateway": GW},
                        headers=who)
        assert r.status_code == 403 and fields(r) == ["role"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"agent": "call me", "citizen": CITIZEN, "gateway": GW}, 422, "outbound-calls.agent"),
    ({"agent": AGENT, "citizen": "+7495000000", "gateway": GW}, 422, "outbound-calls.citizen"),
    ({"agent": AGENT, "citizen": CITIZEN, "gateway": "gw-nowhere"}, 422, "outbound-calls.gateway"),
    ({"agent": AGENT, "citizen": "+380679999999"}, 422, "outbound-calls.gateway"),  # never called: city unknown
    ({"agent": AGENT, "citizen": CITIZEN, "city": "Atlantis"}, 422, "outbound-calls.city"),
    ({"agent": AGENT, "citizen": CITIZEN, "city": "Mariupol"}, 409, "outbound-calls.gateway"),  # none online
    ({"agent": AGENT}, 422, "outbound-calls.citizen"),
    ({"agent": AGENT, "citizen": CITIZEN, "gateway": GW, "extra": 1}, 422, "outbound-calls.extra"),
])
def test_bad_calls_are_refused_naming_the_field(client, operator, gateway, body, status, field):
    before = len(gateway.sent)
    r = client.post(f"{API}/outbound-calls", json=body, headers=operator)
    assert r.status_code == status, r.text
    assert fields(r) == [field]
    assert len(gateway.sent) == before  # nothing was sent


def test_a_call_is_sent_answered_and_settled_by_its_record(client, db, operator, viewer, gateway):
    set_state(db, GW, online=True)
    r = client.post(f"{API}/outbound-calls", json={"agent": AGENT, "citizen": CITIZEN, "city": "Mariupol"},
                    headers=operator)
    assert r.status_code == 202, r.text
    placed = r.json()
    assert (placed["gateway"], placed["via"], placed["ok"], placed["outcome"]) == (GW, "gsm2", True, None)
    assert gateway.sent[-1] == (GW, "call", {"agent": AGENT, "citizen": CITIZEN, "via": "gsm2"}, placed["command"])
    store(db, GW, [outbound_record(1, placed["command"], "answered", talk=95)])
    listed = client.get(f"{API}/outbound-calls", headers=viewer).json()["data"][0]
    assert (listed["id"], listed["outcome"], listed["ended_at"]) == (placed["id"], "answered", START + 1 + 4 + 95)
    calls = client.get(f"{API}/calls", params={"kind": "outbound"}, headers=viewer).json()["data"]
    assert [(c["kind"], c["caller"], c["agent"], c["outcome"], c["talk_s"]) for c in calls] == [
        ("outbound", mask(CITIZEN), AGENT, "answered", 95)]  # a citizen's number: masked for viewers
    assert client.get(f"{API}/calls", headers=viewer).json()["count"] == 0  # citizens' calls stay apart


def test_a_busy_gateway_refuses_and_a_silent_one_times_out(client, db, operator, gateway):
    body = {"agent": AGENT, "citizen": CITIZEN, "gateway": GW}
    set_state(db, GW, online=True, calls=1)
    assert client.post(f"{API}/outbound-calls", json={**body, "gateway": None, "city": "Mariupol"},
                       headers=operator).status_code == 409  # its only out port is in a call
    gateway.reply = {"ok": False, "error": "no_free_port"}
    r = client.post(f"{API}/outbound-calls", json=body, headers=operator)
    assert r.status_code == 409 and "no_free_port" in r.json()["detail"][0]["reason"]
    gateway.reply = TimeoutError("gw-mariupol-1 did not answer call within 20s")
    r = client.post(f"{API}/outbound-calls", json=body, headers=operator)
    assert r.status_code == 504 and fields(r) == ["outbound-calls.gateway"]
    gateway.reply = commands.CommandsBusy("1000 commands wait")
    assert client.post(f"{API}/outbound-calls", json=body, headers=operator).status_code == 503
    gateway.reply = None
    with db.session() as s:
        assert s.scalar(select(OutboundCall).where(OutboundCall.outcome.is_(None))) is None  # refusals not kept


def test_without_a_bridge_no_call_is_placed(db, operator):
    with TestClient(create_app(db, settings=SETTINGS)) as c:
        r = c.post(f"{API}/outbound-calls", json={"agent": AGENT, "citizen": CITIZEN, "gateway": GW},
                   headers=operator)
        assert r.status_code == 503 and "no MQTT bridge" in r.text
        r = c.post(f"{API}/outbound-calls", json={"agent": AGENT, "citizen": "+7", "gateway": GW}, headers=operator)
        assert r.status_code == 422 and fields(r) == ["outbound-calls.citizen"]  # bad input first


def test_call_back_now_counts_attempts_then_marks_the_call_back_done(client, db, operator, viewer, gateway):
    caller = "+380671110000"
    store(db, GW, [{"seq": 1, "t": "call", "start": START, "port": "gsm1", "caller": caller, "route": "police-102",
                    "outcome": "callback", "target": None, "attempts": 2, "ring_s": 50, "talk_s": 0,
                    "reason": "no_answer"}], store_id="st-cb")
    set_state(db, GW, online=True)
    queue = client.get(f"{API}/callbacks", headers=viewer).json()["data"]
    cb = next(c for c in queue if c["caller"] == mask(caller))  # viewers see callers masked
    assert client.post(f"{API}/callbacks/{cb['id']}/call", json={"agent": AGENT}, headers=viewer).status_code == 403
    r = client.post(f"{API}/callbacks/{cb['id']}/call", json={"agent": AGENT}, headers=operator)
    assert r.status_code == 202, r.text
    first = r.json()
    assert (first["callback_id"], first["citizen"], first["gateway"]) == (cb["id"], caller, GW)
    store(db, GW, [outbound_record(10, first["command"], "citizen_no_answer", citizen=caller)])
    queue = client.get(f"{API}/callbacks", headers=viewer).json()["data"]
    again = next(c for c in queue if c["id"] == cb["id"])
    assert again["callback_attempts"] == 1 and again["callback_done_at"] is None

    # the record comes before the gateway's answer is handled: the request settles from it at once
    gateway.before_reply = lambda gw, cid, args: store(db, gw, [outbound_record(11, cid, "answered", caller, 30)])
    try:
        r = client.post(f"{API}/callbacks/{cb['id']}/call", json={"agent": AGENT}, headers=operator)
    finally:
        gateway.before_reply = None
    assert r.status_code == 202 and r.json()["outcome"] == "answered"
    assert cb["id"] not in [c["id"] for c in client.get(f"{API}/callbacks", headers=viewer).json()["data"]]
    with db.session() as s:
        done = s.get(Record, cb["id"])
        assert done.callback_done_at == START + 11 + 4 + 30 and done.callback_attempts == 1
    r = client.post(f"{API}/callbacks/{cb['id']}/call", json={"agent": AGENT}, headers=operator)
    assert r.status_code == 409 and fields(r) == ["call_id"]
    assert client.post(f"{API}/callbacks/999999/call", json={"agent": AGENT}, headers=operator).status_code == 404


def test_outbound_report_per_city_and_day(client, viewer):
    r = client.get(f"{API}/reports/outbound", params={"interval": "day"}, headers=viewer)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [(x["city"], x["period"], x["placed"], x["answered"], x["not_reached"], x["citizen_no_answer"])
            for x in rows] == [("Mariupol", "2016-08-01", 3, 2, 1, 1)]
    assert rows[0]["talk_s"] == 95 + 30
    assert client.get(f"{API}/reports/outbound", params={"from": START + 86400}, headers=viewer).json()["rows"] == []
