"""Operators call citizens (DESIGN §5a, the `call` command) through the real firmware: the board rings the
agent on one free out port, then the citizen on another once the agent answered, bridges them and records
the call; refusals come back at once and dial nobody."""

from __future__ import annotations

import json

import pytest

from protocols import topics
from tests.conditions import until
from tests.hil.conftest import MONDAY_NOON

pytestmark = pytest.mark.slow
AGENT = "+380629000505"  # the 505 line's operator desk
CITIZEN = "+380671234567"  # a citizen being called back
SILENT_AGENT = "+380629000506"  # a desk nobody answers


def board_table(gw: str, version: int = 1) -> dict:
    """gsm3 and gsm4 dial out (the targets' via): the out ports of the operators' calls."""
    return {"schema": 1, "gateway": gw, "version": version, "tz": "UTC0", "issued_at": MONDAY_NOON - 86400,
            "deny": ["+7"],
            "targets": {"centre-a": {"number": "+380629000001", "via": ["gsm3"], "ring_timeout_s": 3},
                        "centre-b": {"number": "+380629000002", "via": ["gsm4"], "ring_timeout_s": 3}},
            "routes": [{"id": "main", "port": "gsm1", "targets": ["centre-a"]}]}


def out_legs(rig, number: str) -> list[dict]:
    return [t for t in rig.network.truth() if t["dir"] == "out" and t["number"] == number]


def outbound_record(controller, gw: str, cid: str) -> dict:
    return controller.wait(lambda: next((r for (g, _, _), r in list(controller.records.items())
                                         if g == gw and r.get("t") == "outbound" and r.get("cmd") == cid), None),
                           60, f"the outbound record of command {cid}")


def test_the_agent_is_rung_first_then_the_citizen_and_both_are_bridged(rig, board, controller):
    rig.network.destination(AGENT, answer_after_s=0.5, talk_s=8)
    rig.network.destination(CITIZEN, answer_after_s=1.0, talk_s=2)
    before = len(out_legs(rig, AGENT)), len(out_legs(rig, CITIZEN))
    res = controller.command(board.id, "call", {"agent": AGENT, "citizen": CITIZEN, "ring_timeout_s": 10})
    assert res["ok"], res
    assert res["result"]["port"] in ("gsm3", "gsm4") and res["result"]["agent_port"] != res["result"]["port"]
    rec = outbound_record(controller, board.id, res["id"])
    assert (rec["outcome"], rec["agent"], rec["citizen"], rec["port"]) == \
        ("answered", AGENT, CITIZEN, res["result"]["port"])
    assert rec["talk_s"] >= 1
    agent, citizen = until(lambda: (a := out_legs(rig, AGENT)[before[0]:], c := out_legs(rig, CITIZEN)[before[1]:])
                           and len(a) == 1 and len(c) == 1 and a[0]["end"] and c[0]["end"] and (a[0], c[0]),
                           30, "both legs of the operator's call, ended")
    assert agent["answer"] is not None and citizen["answer"] is not None
    assert citizen["start"] >= agent["answer"] - 0.2, "the citizen is dialled only once the agent answered"
    assert citizen["answer"] - citizen["start"] >= 0.8
    if agent.get("bridged_to") is not None or citizen.get("bridged_to") is not None:  # a bench cannot see this
        assert (agent["bridged_to"], citizen["bridged_to"]) == (CITIZEN, AGENT)
        assert agent["inbound"] is None and citizen["inbound"] is None


def test_a_denied_citizen_is_refused_at_once_and_nobody_is_dialled(rig, board, controller):
    before = len(out_legs(rig, AGENT))
    res = controller.command(board.id, "call", {"agent": AGENT, "citizen": "+74951234567"})
    assert (res["ok"], res["error"]) == (False, "denied"), res
    res = controller.command(board.id, "call", {"agent": "+74951234567", "citizen": CITIZEN})
    assert (res["ok"], res["error"]) == (False, "denied"), res
    state = controller.command(board.id, "resend_state")  # a round trip later: still nothing dialled
    assert state["ok"]
    assert len(out_legs(rig, AGENT)) == before
    assert not [t for t in rig.network.truth() if t["dir"] == "out" and t["number"].startswith("+7")]


def raw_command(controller, gw: str, cid: str, op: str, args: dict) -> dict:
    """A command as a faulty controller might send it (the peer's command() refuses to send what breaks
    the contract)."""
    controller.client.publish(topics.cmd(gw), json.dumps({"id": cid, "op": op, "args": args}).encode(), qos=1)
    return controller.wait(lambda: controller.results.get(cid), 20, f"the result of {cid}")


def test_a_bad_number_or_a_missing_port_is_refused(rig, board, controller):
    res = raw_command(controller, board.id, "bad-citizen", "call", {"agent": AGENT, "citizen": "+0671234567"})
    assert res["ok"] is False and res["error"].startswith("bad_number: args.citizen"), res
    res = raw_command(controller, board.id, "bad-agent", "call", {"agent": "desk 5", "citizen": CITIZEN})
    assert res["ok"] is False and res["error"].startswith("bad_number: args.agent"), res
    res = raw_command(controller, board.id, "bad-timeout", "call", {"agent": AGENT, "citizen": CITIZEN,
                                                                     "ring_timeout_s": 0})
    assert res["ok"] is False and res["error"].startswith("bad_command: args.ring_timeout_s"), res
    res = controller.command(board.id, "call", {"agent": AGENT, "citizen": CITIZEN, "via": "gsm9"})
    assert (res["ok"], res["error"]) == (False, "no_free_port"), res


def test_an_agent_who_does_not_answer_leaves_the_citizen_alone(rig, board, controller):
    rig.network.destination(SILENT_AGENT, no_answer=True)
    before = len(out_legs(rig, CITIZEN))
    res = controller.command(board.id, "call", {"agent": SILENT_AGENT, "citizen": CITIZEN, "ring_timeout_s": 3})
    assert res["ok"], res
    rec = outbound_record(controller, board.id, res["id"])
    assert (rec["outcome"], rec["talk_s"]) == ("agent_no_answer", 0)
    assert rec["ring_s"] >= 2
    assert len(out_legs(rig, CITIZEN)) == before, "the citizen must not be dialled without an agent"


def test_a_call_command_delivered_twice_places_one_call(rig, board, controller):
    rig.network.destination(AGENT, answer_after_s=0.5, talk_s=4)
    rig.network.destination(CITIZEN, answer_after_s=0.5, talk_s=1)
    before = len(out_legs(rig, AGENT))
    args = {"agent": AGENT, "citizen": CITIZEN}
    first = raw_command(controller, board.id, "twice-1", "call", args)
    with controller.lock:
        del controller.results["twice-1"]
    second = raw_command(controller, board.id, "twice-1", "call", args)  # as a QoS 1 redelivery would
    assert first["ok"] and first == second, (first, second)
    assert outbound_record(controller, board.id, "twice-1")["outcome"] == "answered"
    until(lambda: all(t["end"] for t in out_legs(rig, AGENT)[before:]), 30, "the agent's leg, ended")
    assert len(out_legs(rig, AGENT)) == before + 1, "the agent was rung twice"
