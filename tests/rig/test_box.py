"""bench-in-a-box (hil_tests/rigs/bench-in-a-box.toml): the emulated board reached only as a real bench reaches
a board — power through the relay, console through pyserial, a call placed by a caller modem with AT commands
into the board's SIM number, routed by the real firmware to a centre modem that answers with ATA."""

from __future__ import annotations

import json

import pytest

from hil_tests.peer import ControllerPeer
from hil_tests.rig import config, make_rig

pytestmark = [pytest.mark.slow, pytest.mark.micropython]
BOX = config.RIGS / "bench-in-a-box.toml"


def table(gw: str) -> dict:
    return {"schema": 1, "gateway": gw, "version": 1, "tz": "UTC0",
            "targets": {"centre-a": {"number": "+380629000001", "via": ["gsm3"], "ring_timeout_s": 5}},
            "routes": [{"id": "basic", "port": "gsm1", "targets": ["centre-a"]}]}


def test_a_call_through_the_box_is_routed_answered_and_recorded(tmp_path):
    cfg = config.load(BOX)
    with make_rig(cfg, tmp_path) as rig, ControllerPeer(rig.broker.url, client_id="box-controller") as peer:
        gw = rig.board.id
        rig.power.cycle()  # through the Modbus relay
        rig.console.expect(r"link: connected", timeout=60)  # through pyserial on the board's console pty
        peer.wait_state(gw, lambda s: s.get("online") and all(p["ready"] for p in s["ports"].values()), timeout=60)
        peer.push_table(gw, json.dumps(table(gw)).encode(), rig.board.key)
        assert peer.wait_ack(gw, 1)["status"] == "applied"
        rig.network.destination("+380629000001", answer_after_s=0.5, talk_s=4)  # centre-a's modem plays it
        lived = rig.network.call("gsm1", "+380500000001").wait(60)  # caller-50 dials gsm1's SIM (ATD)
        record = peer.wait_calls(gw, 1)[0]
        truth = rig.network.inbound()[0]
        with pytest.raises(Exception, match="lacks feature clock_control"):
            rig.network.set_time(0)
    assert lived["answered"] and lived["connected_to"] == "+380629000001", lived
    assert (record["caller"], record["outcome"], record["target"]) == ("+380500000001", "answered", "centre-a")
    assert [(a["port"], a["result"]) for a in truth["attempts"]] == [("gsm3", "answered")]
    assert truth["bridge_s"] >= 1.0 and abs(record["talk_s"] - truth["bridge_s"]) <= 1.5
