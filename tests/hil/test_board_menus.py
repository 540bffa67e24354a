"""IVR menus at the edge (DESIGN §5a) through the real firmware: callers of +38050 reach the city hall's menu
on the board's gsm1, which answers them, speaks the prompt, takes one key and dials the option's centre."""

from __future__ import annotations

import itertools

import pytest

from tests.conditions import until
from tests.hil.conftest import scenario_table

pytestmark = pytest.mark.slow
_serial = itertools.count(5000)
PROMPT = "City hall. Press 2 for the registry, or wait for the operator."
OPERATOR, REGISTRY = "+380629000001", "+380629000002"  # centre-a, centre-b


def board_table(gw: str) -> dict:
    """The scenario table, with the +38050 callers' route ("basic") replaced by the city hall's menu."""
    doc = scenario_table(gw)
    doc["menus"] = {"hall": {"prompt": PROMPT, "timeout_s": 1, "tries": 2, "default": "0",
                             "options": {"0": {"targets": ["centre-a"], "fallback": {"action": "callback"}},
                                         "2": {"targets": ["centre-b"]}}}}
    doc["routes"] = [{"id": "hall", "port": "*", "caller": ["+38050"], "menu": "hall"} if r["id"] == "basic" else r
                     for r in doc["routes"]]
    return doc


def menu_call(rig, controller, keys=None, hangup_after_s=None, timeout=60):
    """One call into the menu; what the caller lived, the gateway's record and the network's account."""
    caller = f"+38050{next(_serial):07d}"
    gw = rig.board.id
    with controller.lock:
        seen = set(controller.records)
    lived = rig.network.call("gsm1", caller, keys=keys, keys_after_s=1.0, hangup_after_s=hangup_after_s).wait(timeout)
    record = controller.wait(lambda: next((r for k, r in sorted(controller.records.items())
                                           if k not in seen and k[0] == gw and r.get("t") == "call"
                                           and r["caller"] == lived["caller"]), None), 20,
                             f"the record of the call from {lived['caller']}")
    truth = until(lambda: next((t for t in rig.network.inbound() if t["id"] == lived["id"]
                                and all(a["result"] not in (None, "active") for a in t["attempts"])), None),
                  30, f"the network's account of the call from {lived['caller']} with every attempt ended")
    return lived, record, truth


def test_key_2_reaches_the_registry_and_the_record_has_the_option(rig, board, controller):
    lived, rec, truth = menu_call(rig, controller, keys="2")
    assert (rec["route"], rec["menu"], rec["option"], rec["keys"]) == ("hall", "hall", "2", "2"), rec
    assert (rec["outcome"], rec["target"], rec["attempts"], rec["prompts"]) == ("answered", "centre-b", 1, 1), rec
    assert lived["answered"] and lived["connected_to"] == REGISTRY
    assert [a["number"] for a in truth["attempts"]] == [REGISTRY]
    assert truth["keys"] == "2"


def test_no_key_reaches_the_operator_after_the_tries(rig, board, controller):
    lived, rec, truth = menu_call(rig, controller)
    assert (rec["option"], rec["keys"], rec["prompts"], rec["target"], rec["outcome"]) == \
        ("0", "", 2, "centre-a", "answered"), rec
    assert lived["answered"] and lived["connected_to"] == OPERATOR
    assert [a["number"] for a in truth["attempts"]] == [OPERATOR]
    # the operator was dialled only after two prompts and two waits of timeout_s (1 s) each
    centre = next(t for t in rig.network.truth() if t["dir"] == "out" and t["id"] == truth["attempts"][0]["id"])
    assert centre["start"] - truth["answer"] >= 2 * 1.0 + 2 * 1.0
    assert rec["menu_answer_s"] <= 5 and truth["answer"] - truth["start"] <= 6, "a menu answers at once"


def test_a_caller_hanging_up_during_the_prompt_is_abandoned_and_nobody_is_dialled(rig, board, controller):
    lived, rec, truth = menu_call(rig, controller, hangup_after_s=3.0)
    assert lived["answered"] and lived["ended_by"] == "caller"
    assert (rec["route"], rec["outcome"], rec["reason"], rec["target"]) == ("hall", "abandoned", "caller_hangup",
                                                                            None), rec
    assert "option" not in rec and truth["attempts"] == []


@pytest.mark.needs("prompt_truth")
def test_the_ground_truth_shows_the_prompt_played_and_the_key_heard(rig, board, controller):
    _, rec, truth = menu_call(rig, controller)
    assert [(p["prompt"], p["kind"], p["heard"], p["complete"]) for p in truth["prompts"]] == \
        [(PROMPT, "tts", True, True)] * 2 == [(PROMPT, "tts", True, True)] * rec["prompts"]
    first, second = truth["prompts"]
    assert first["at"] >= truth["answer"] - 0.5 and second["at"] >= first["at"] + first["s"] + 1.0
    _, rec, truth = menu_call(rig, controller, keys="2")
    (p,) = truth["prompts"]
    assert p["complete"] is False and p["s"] < 3, "the key stops the prompt"
    assert truth["keys"] == rec["keys"] == "2"
    assert truth["answer"] < truth["attempts"][0]["ring_s"] + truth["start"], "the caller was answered first"
