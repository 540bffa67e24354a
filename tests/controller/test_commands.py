"""Issue 8, finding 8 (forged command replies) and bad commands: ids nobody can guess, replies taken
only from the gateway asked, unsolicited replies dropped and counted, pending commands bounded,
a bad op or args refused before anything is sent. Real Mosquitto, real database and worker."""

from __future__ import annotations

import json
import re
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from controller.commands import CommandsBusy
from protocols import messages, topics
from tests.conditions import until
from tests.controller import test_ingest
from tests.controller.test_ingest import GW

database, running = test_ingest.database, test_ingest.running  # the same fixtures: SQLite and PostgreSQL
OTHER = "gw-kramatorsk-1"


class CommandedGateway:
    """A gateway's side of `cmd` / `cmd/result`: records the commands it gets, replies when told."""

    def __init__(self, port: int, gw: str):
        self.gw = gw
        self.commands: list[dict] = []
        self.got = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=gw)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topics.cmd(gw), qos=1)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.got:
            self.commands.append(json.loads(msg.payload))
            self.got.notify_all()

    def wait_commands(self, n: int, timeout: float = 15) -> list[dict]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.commands) >= n, timeout), f"{self.gw} got {self.commands}"
            return list(self.commands)

    def reply(self, cid: str, result, as_gateway: str | None = None) -> None:
        """Publish a result for `cid` on `as_gateway`'s topic (another gateway's: a forgery)."""
        payload = messages.encode("cmd_result", messages.cmd_result(cid, True, result=result))
        self.c.publish(topics.cmd_result(as_gateway or self.gw), payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def fleet(running):
    db, bridge, fake = running
    fake.close()  # this test's gateways answer commands instead
    a, b = CommandedGateway(fake.c.port, GW), CommandedGateway(fake.c.port, OTHER)
    try:
        yield bridge, a, b
    finally:
        a.close()
        b.close()


def in_thread(fn, *args, **kwargs) -> dict:
    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the test
            out["error"] = e

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def test_a_reply_from_another_gateway_is_not_taken_for_the_answer(fleet):
    bridge, a, b = fleet
    call = in_thread(bridge.command, OTHER, "meminfo", timeout=30)
    cid = b.wait_commands(1)[0]["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", cid), "128 random bits, not ctl-{time}-{counter}"
    a.reply(cid, {"heap_free": 666}, as_gateway=GW)  # gateway A answers a command sent to B
    until(lambda: bridge.commands.unsolicited >= 1, 15, "the forged reply to be dropped", every=0.02)
    b.reply(cid, {"heap_free": 52000})
    call["thread"].join(30)
    assert call.get("value") == {"id": cid, "ok": True, "result": {"heap_free": 52000}}, call


def test_unsolicited_replies_are_dropped_and_counted_not_kept(fleet):
    bridge, a, b = fleet
    for i in range(200):
        a.reply(f"guess-{i}", {"blob": "x" * 3000})
    assert bridge.wait_idle()
    assert bridge.commands.unsolicited == 200 and bridge.refused["unsolicited_replies"] == 200
    assert len(bridge.commands) == 0, "nothing of them is kept"


BAD_COMMANDS = [("", {}), ("nonsense", {}), (None, {}), ("meminfo", "x"), ("meminfo", {"f": 1.5}),
                ("call", {"agent": "abc", "citizen": "102"}), ("probe", {}), ("meminfo", {"pad": "x" * 10_000})]


def test_a_bad_command_is_refused_before_anything_is_sent(fleet):
    bridge, a, b = fleet
    for op, args in BAD_COMMANDS:
        started = time.monotonic()
        with pytest.raises(messages.MessageError):
            bridge.command(GW, op, args, timeout=3)
        assert time.monotonic() - started < 1, f"{op!r} {args!r}: refused at once, nobody waits"
    assert len(bridge.commands) == 0
    good = in_thread(bridge.command, GW, "meminfo", timeout=30)  # in order behind anything sent before it
    received = a.wait_commands(1)
    assert [c["op"] for c in received] == ["meminfo"], "the refused command never went out"
    a.reply(received[0]["id"], {"heap_free": 1})
    good["thread"].join(30)
    assert good["value"]["ok"] is True


def test_pending_commands_are_bounded(fleet):
    bridge, a, b = fleet
    bridge.commands.limit = 3
    calls = [in_thread(bridge.command, GW, "selftest", timeout=30) for _ in range(3)]
    sent = a.wait_commands(3)
    with pytest.raises(CommandsBusy):
        bridge.command(GW, "selftest", timeout=30)
    for cmd in sent:
        a.reply(cmd["id"], {"ok": True})
    for c in calls:
        c["thread"].join(30)
        assert c["value"]["ok"] is True, c
    assert len(bridge.commands) == 0


def test_the_commands_route_answers_422_for_a_bad_command_and_503_when_too_many_wait(fleet, running):
    from fastapi.testclient import TestClient

    from controller.api.app import create_app
    from controller.auth import create_token, create_user
    from controller.settings import Settings

    db, bridge, _ = running
    with db.session() as s:
        token = create_token(s, create_user(s, "tech-" + GW, "technician"), "tests")
    client = TestClient(create_app(db, bridge, Settings()))
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post(f"/api/v1/gateways/{GW}/commands", json={"op": "nonsense"}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "commands.op", r.text
    r = client.post(f"/api/v1/gateways/{GW}/commands", json={"op": "probe", "args": {}}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "commands.args.target", r.text
    bridge.commands.limit = 0
    r = client.post(f"/api/v1/gateways/{GW}/commands", json={"op": "meminfo"}, headers=headers)
    assert r.status_code == 503, r.text
