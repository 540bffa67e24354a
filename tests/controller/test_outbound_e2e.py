"""POST /api/v1/outbound-calls end to end through a real Mosquitto, the MQTT bridge and a real database
(SQLite and PostgreSQL): the gateway is an MQTT client speaking its side of the contract (state with a free
out port, the `call` command answered on cmd/result, then the `outbound` record on events), so the API's
answer is the gateway's own and the record that settles the call goes through the real ingest. The same
call on the emulated board's firmware: tests/hil (once the firmware's `call` op runs there)."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from controller import reference
from controller.api.app import create_app
from controller.auth import create_token, create_user
from controller.brokers import Mosquitto
from controller.compiler import compile_gateway
from controller.ingest.bridge import Bridge
from controller.models import Gateway
from controller.settings import Settings
from protocols import messages, topics
from tests.conditions import until
from tests.controller.databases import KINDS, scratch_database

GW = "gw-mariupol-1"
AGENT, CITIZEN = "+380501112233", "+380671234567"
API = "/api/v1"


class SimulatedGateway:
    """Answers `call` at once (or refuses, per `refuse`), then ends the call as `outcomes` say, one per call:
    an `outbound` record on events, as the firmware does (DESIGN §5a)."""

    def __init__(self, port: int):
        self.outcomes: list[str] = []
        self.refuse: str | None = None
        self.commands: list[dict] = []
        self.seq = 0
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=GW)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topics.cmd(GW), qos=1)
        self.c.loop_start()
        self.send("state", messages.state(True, store_id="st-sim", ports={
            "gsm1": {"kind": "gsm", "ready": True, "calls": 0}, "gsm2": {"kind": "gsm", "ready": True, "calls": 0}}))

    def send(self, kind: str, obj: dict) -> None:
        self.c.publish(topics.topic(GW, kind), messages.encode(kind, obj), qos=1)

    def _on_message(self, client, userdata, msg):
        cmd = messages.decode("cmd", msg.payload)
        with self.lock:
            self.commands.append(cmd)
            if cmd["op"] != "call":
                return
            if self.refuse:
                self.send("cmd_result", messages.cmd_result(cmd["id"], False, error=self.refuse))
                return
            self.send("cmd_result", messages.cmd_result(cmd["id"], True, result={"accepted": True}))
            self.seq += 1
            outcome = self.outcomes.pop(0) if self.outcomes else "answered"
            a = cmd["args"]
            rec = messages.outbound_record(self.seq, cmd["id"], int(time.time()), a.get("via", "gsm2"), a["agent"],
                                           a["citizen"], outcome, 6, 40 if outcome == "answered" else 0)
            self.send("events", messages.events("st-sim", [rec]))

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture(params=KINDS)
def running(request, tmp_path):
    with scratch_database(request.param, tmp_path, request.node.name) as db:
        db.upgrade()
        with db.session() as s:
            reference.seed(s)
            compile_gateway(s, s.get(Gateway, GW))
            token = create_token(s, create_user(s, "op-" + uuid.uuid4().hex[:6], "operator"), "tests")
        with Mosquitto() as broker:
            bridge = Bridge(db, broker.url, client_id="ctl-" + uuid.uuid4().hex[:6]).start()
            gw = SimulatedGateway(broker.port)
            try:
                with TestClient(create_app(db, bridge, Settings())) as client:
                    client.headers["Authorization"] = f"Bearer {token}"
                    yield db, client, gw
            finally:
                gw.close()
                bridge.stop()


def online(db) -> bool:
    with db.session() as s:
        return s.get(Gateway, GW).online


def test_an_operator_calls_a_citizen_and_the_call_is_stored_and_reported(running):
    db, client, gw = running
    until(lambda: online(db), 15, "the gateway's state")
    r = client.post(f"{API}/outbound-calls", json={"agent": AGENT, "citizen": CITIZEN, "city": "Mariupol"})
    assert r.status_code == 202, r.text
    placed = r.json()
    assert (placed["gateway"], placed["via"], placed["result"]) == (GW, "gsm2", {"accepted": True})
    assert gw.commands[-1]["args"] == {"agent": AGENT, "citizen": CITIZEN, "via": "gsm2"}
    ended = until(lambda: client.get(f"{API}/outbound-calls").json()["data"][0]["outcome"], 15, "the record")
    assert ended == "answered"
    calls = client.get(f"{API}/calls", params={"kind": "outbound"}).json()["data"]
    assert [(c["caller"], c["agent"], c["outcome"], c["talk_s"]) for c in calls] == [(CITIZEN, AGENT, "answered", 40)]
    rows = client.get(f"{API}/reports/outbound").json()["rows"]
    assert [(x["city"], x["placed"], x["answered"], x["not_reached"]) for x in rows] == [("Mariupol", 1, 1, 0)]

    gw.refuse = "no_free_port"
    r = client.post(f"{API}/outbound-calls", json={"agent": AGENT, "citizen": CITIZEN, "gateway": GW})
    assert r.status_code == 409 and "no_free_port" in r.json()["detail"][0]["reason"]


def test_call_back_now_until_the_citizen_answers(running):
    db, client, gw = running
    until(lambda: online(db), 15, "the gateway's state")
    gw.send("events", messages.events("st-sim", [messages.call_record(
        100, int(time.time()) - 600, "gsm1", CITIZEN, "police-102", "callback", None, 2, 50, 0, "all_busy")]))
    cb = until(lambda: client.get(f"{API}/callbacks").json()["data"], 15, "the call-back")[0]
    gw.outcomes = ["citizen_no_answer", "answered"]
    assert client.post(f"{API}/callbacks/{cb['id']}/call", json={"agent": AGENT}).status_code == 202
    until(lambda: client.get(f"{API}/callbacks").json()["data"][0]["callback_attempts"] == 1, 15, "an attempt")
    assert client.post(f"{API}/callbacks/{cb['id']}/call", json={"agent": AGENT}).status_code == 202
    until(lambda: client.get(f"{API}/callbacks").json()["count"] == 0, 15, "the call-back done")
    assert gw.commands[-1]["args"]["citizen"] == CITIZEN
