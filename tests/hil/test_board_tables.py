"""Table pushes to a running board: verified, stored, applied and acked, or rejected with the old table kept."""

from __future__ import annotations

import json

import pytest

from protocols import routing
from tests.hil.conftest import scenario_table

pytestmark = pytest.mark.slow


def _latest_ack(peer, gw, after: int) -> dict:
    return peer.wait(lambda: len(peer.acks.get(gw, [])) > after and peer.acks[gw][-1], 30, "a new table ack")


@pytest.mark.parametrize("case", ["bad signature", "old version", "other gateway", "invalid table",
                                  "same version, other body"])
def test_bad_tables_are_rejected_and_the_old_one_kept(rig, board, controller, case):
    peer, GW, KEY = controller, board.id, board.key
    good = peer.wait_state(GW, lambda s: s.get("table_version"))["table_version"]
    if good < 3:  # so that an older version exists
        good = 3
        peer.push_table(GW, json.dumps(scenario_table(GW, version=good)).encode(), KEY)
        assert peer.wait_ack(GW, good)["status"] == "applied"
    doc = scenario_table(GW, version=good + 1)
    key = KEY
    if case == "bad signature":
        key = "77" * 32
    elif case == "old version":
        doc["version"] = good - 1
    elif case == "other gateway":
        doc["gateway"] = "gw-elsewhere-9"
    elif case == "invalid table":
        doc["routes"][0]["hours"] = [{"days": "12345", "start": "09:00", "end": "25:00"}]
    elif case == "same version, other body":
        doc["version"] = good
        doc["deny"] = ["+7", "+8"]
    before = len(peer.acks.get(GW, []))
    peer.push_table(GW, json.dumps(doc).encode(), key)
    ack = _latest_ack(peer, GW, before)
    expected_path = {"bad signature": "sig", "old version": "version", "other gateway": "gateway",
                     "invalid table": "routes[0].hours[0].end", "same version, other body": "version"}[case]
    assert ack["status"] == "rejected" and ack["reason"].startswith(expected_path + ":"), ack
    state = peer.command(GW, "resend_state") and peer.wait_state(GW)
    assert state["table_version"] == good, "the board must keep running the table it had"
    # and it still routes with it
    caller = "+380501230000"
    lived = rig.network.call("gsm1", caller).wait(30)
    assert lived["answered"]
    # put the good table back as the retained one, so later tests see a consistent broker
    body = scenario_table(GW, version=good)
    restored = len(peer.acks.get(GW, []))
    peer.push_table(GW, json.dumps(body).encode(), KEY)
    assert _latest_ack(peer, GW, restored)["status"] == "applied"


@pytest.mark.needs("clock_control")  # the table closes the network clock's day
def test_a_newer_table_is_applied_and_survives_a_reboot(rig, board, controller):
    peer, GW, KEY = controller, board.id, board.key
    good = peer.wait_state(GW, lambda s: s.get("table_version"))["table_version"]
    doc = scenario_table(GW, version=good + 1, closed=["2026-11-23"])  # today is a holiday now
    body = json.dumps(doc).encode()
    before = len(peer.acks.get(GW, []))
    peer.push_table(GW, body, KEY)
    ack = _latest_ack(peer, GW, before)
    assert ack["status"] == "applied" and ack["sha256"] == routing.load(body).sha256
    lived = rig.network.call("gsm1", "+380501239999").wait(30)
    rec = peer.wait(lambda: next((r for r in peer.calls(GW) if r["caller"] == "+380501239999"), None), 20, "record")
    assert (rec["outcome"], rec["reason"]) == ("after_hours", "closed_day") and not lived["answered"]
    boot = peer.wait_state(GW)["boot"]
    rig.power.cycle()
    state = peer.wait_state(GW, lambda s: s.get("online") and s.get("boot", 0) > boot, timeout=40)
    assert state["table_version"] == good + 1 and state["table_sha256"] == ack["sha256"]


def test_the_board_refuses_a_table_it_already_runs_without_reapplying(rig, board, controller):
    peer, GW, KEY = controller, board.id, board.key
    running = peer.wait_state(GW, lambda s: s.get("table_version"))["table_version"]
    body = json.dumps(scenario_table(GW, version=running + 1)).encode()
    before = len(peer.acks.get(GW, []))
    peer.push_table(GW, body, KEY)  # a table of its own first: the test needs no earlier test to have run
    assert _latest_ack(peer, GW, before)["status"] == "applied"
    peer.command(GW, "resend_state")
    state = peer.wait_state(GW, lambda s: s.get("table_version") == running + 1)
    before = len(peer.acks.get(GW, []))
    peer.push_table(GW, body, KEY)  # the very same bytes as the running table
    ack = _latest_ack(peer, GW, before)
    assert ack["status"] == "applied" and ack["version"] == state["table_version"]
    assert peer.wait_state(GW)["table_version"] == state["table_version"]
