"""Calls through the real firmware on an emulated 4-GSM board: gsm1/gsm2 take citizens' calls,
gsm3/gsm4 dial the centres. Each scenario's route is picked by the caller's prefix."""

from __future__ import annotations

import itertools
import threading

import pytest

from tests.conditions import until

pytestmark = pytest.mark.slow
_serial = itertools.count(1000)


def place(rig, controller, prefix: str, port: str = "gsm1", hangup_after_s: float | None = None,
          timeout: float = 30):
    """One inbound call; returns what the caller lived, the gateway's record and the network's truth.
    The caller number is a fresh one with `prefix` where the rig can choose it; a bench's call comes from
    its caller modem's own SIM, so the record is the new one from the number the caller really had."""
    caller = f"{prefix}{next(_serial):07d}"
    gw = rig.board.id
    with controller.lock:
        seen = set(controller.records)  # (gateway, store, seq) of every record so far
    lived = rig.network.call(port, caller, hangup_after_s=hangup_after_s).wait(timeout)
    record = controller.wait(lambda: next((r for k, r in sorted(controller.records.items())
                                           if k not in seen and k[0] == gw and r.get("t") == "call"
                                           and r["caller"] == lived["caller"]), None), 20,
                             f"the record of the call from {lived['caller']}")
    # a bench learns that a centre's leg ended from its modem (NO CARRIER, or the ring stopping): wait for it
    truth = until(lambda: next((t for t in rig.network.inbound() if t["id"] == lived["id"]
                                and all(a["result"] not in (None, "active") for a in t["attempts"])), None),
                  30, f"the network's account of the call from {lived['caller']} with every attempt ended")
    return lived, record, truth


def test_call_is_routed_late_answered_and_bridged(rig, board, controller):
    lived, rec, truth = place(rig, controller, "+38050")
    assert lived["answered"] and lived["connected_to"] == "+380629000001"
    assert (rec["outcome"], rec["route"], rec["target"], rec["attempts"], rec["reason"]) == \
        ("answered", "basic", "centre-a", 1, "ok")
    assert truth["attempts"][0]["port"] == "gsm3"
    # late answer: the caller's leg was answered only when the centre answered
    assert truth["answer"] >= truth["start"] + 0.35
    assert truth["bridge_s"] >= 1.0 and abs(rec["talk_s"] - truth["bridge_s"]) <= 1


@pytest.mark.parametrize("prefix,first", [("+38051", "busy"), ("+38052", "no_answer")])
def test_failover_to_the_next_centre(rig, board, controller, prefix, first):
    lived, rec, truth = place(rig, controller, prefix)
    assert lived["answered"] and lived["connected_to"] == "+380629000002"
    assert (rec["outcome"], rec["target"], rec["attempts"]) == ("answered", "centre-b", 2)
    assert [a["result"] for a in truth["attempts"]] == [first, "answered"]


def test_all_busy_leaves_a_callback_record_and_never_answers(rig, board, controller):
    lived, rec, truth = place(rig, controller, "+38053")
    assert not lived["answered"], "an unanswered caller must not be charged"
    assert rec["outcome"] == "callback" and rec["caller"] == lived["caller"]
    assert [a["result"] for a in truth["attempts"]] == ["busy"]


@pytest.mark.needs("clock_control")
def test_after_hours_gives_a_callback_without_dialling(rig, board, controller):
    from tests.hil.conftest import MONDAY_NOON

    rig.network.set_time(MONDAY_NOON + 6 * 3600)  # 18:00, the office closed at 17:00
    try:
        lived, rec, truth = place(rig, controller, "+38054")  # the next call sees the network's time
        assert (rec["outcome"], rec["reason"], rec["attempts"]) == ("callback", "after_hours", 0)
        assert truth["attempts"] == [] and not lived["answered"]
    finally:
        rig.network.set_time(MONDAY_NOON)


def test_denied_prefix_is_never_dialled(rig, board, controller):
    lived, rec, truth = place(rig, controller, "+38055")
    assert rec["target"] == "centre-b" and lived["connected_to"] == "+380629000002"
    dialled = [t["number"] for t in rig.network.truth() if t["dir"] == "out"]
    assert not any(n.startswith("+7") for n in dialled)


def test_caller_abandons_while_the_centre_rings(rig, board, controller):
    rig.network.destination("+380629000001", answer_after_s=5, talk_s=1)
    try:
        lived, rec, truth = place(rig, controller, "+38050", hangup_after_s=1.0)
    finally:
        rig.network.destination("+380629000001", answer_after_s=0.4, talk_s=1.5)
    assert not lived["answered"] and lived["ended_by"] == "caller"
    assert (rec["outcome"], rec["reason"]) == ("abandoned", "caller_hangup")
    assert truth["attempts"][0]["result"] in ("no_answer", "failed") or truth["attempts"][0]["detail"] == "cancelled"


def test_round_robin_alternates_centres(rig, board, controller):
    targets = [place(rig, controller, "+38056")[1]["target"] for _ in range(4)]
    assert targets in (["centre-a", "centre-b"] * 2, ["centre-b", "centre-a"] * 2)


def test_max_calls_respected_under_concurrent_calls(rig, board, controller):
    rig.network.destination("+380629000001", answer_after_s=0.3, talk_s=4)
    out = {}

    def one(port):
        out[port] = place(rig, controller, "+38057", port=port)

    try:
        threads = [threading.Thread(target=one, args=(p,)) for p in ("gsm1", "gsm2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        rig.network.destination("+380629000001", answer_after_s=0.4, talk_s=1.5)
    outcomes = sorted(rec["outcome"] for _, rec, _ in out.values())
    assert outcomes == ["answered", "callback"], outcomes
    legs = [t for t in rig.network.truth() if t["dir"] == "out" and t["number"] == "+380629000001"
            and t["answer"] is not None]
    for a, b in itertools.combinations(legs, 2):
        assert a["end"] <= b["answer"] or b["end"] <= a["answer"], "centre-a (max_calls 1) had two calls at once"


@pytest.mark.needs("modem_faults")
def test_garbage_from_a_modem_is_skipped_and_alarmed(rig, board, controller):
    mark = rig.console.mark()
    for _ in range(12):
        rig.network.garbage("gsm1", b"\x00\xffNOISE\x13\x88garbage\r\n")
    rig.console.expect(r"gsm1.*(skip|garbage)", timeout=10, after=mark)
    alarms = controller.wait(lambda: [r for (g, _, _), r in list(controller.records.items())
                                      if g == board.id and r.get("t") == "alarm" and "garbage" in r.get("code", "")],
                             20, "a garbage alarm")
    assert alarms[0]["port"] == "gsm1"
    lived, rec, _ = place(rig, controller, "+38050")
    assert rec["outcome"] == "answered", "the line still works after the noise"


def test_one_record_per_call_and_no_gap_in_seq(rig, board, controller):
    place(rig, controller, "+38050")
    calls = controller.calls(board.id)
    assert sorted(r["caller"] for r in calls) == sorted(t["caller"] for t in rig.network.inbound())
    seqs = sorted(s for (g, _, s) in controller.records if g == board.id)
    assert seqs == list(range(1, len(seqs) + 1)), "a record is missing"
