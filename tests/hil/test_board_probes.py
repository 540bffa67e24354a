"""Probe calls (DESIGN §5a) through the real firmware: the board dials a centre only to hear it ring, hangs up
at alerting and records the post-dial delay; an unreachable centre is recorded as such; a denied or full
centre is never dialled; the table's schedule runs on the board while its uplink is down."""

from __future__ import annotations

import json

import pytest

from tests.conditions import until
from tests.hil.conftest import MONDAY_NOON

pytestmark = pytest.mark.slow
RINGING = "+380629000001"  # centre-a: rings, answers only after the probe is long gone
SCHEDULED = "+380629000002"  # centre-b: probed by the table's schedule
UNREACHABLE = "+380629000099"  # no such subscriber: the network releases the call before it rings
ALERT_S = 1.0  # the ringing centre's post-dial delay, where the rig can set it


def board_table(gw: str, version: int = 1, probes: list | None = None) -> dict:
    """Probes dial from gsm3 only; the scheduled one (pushed by its test) from gsm4."""
    doc = {"schema": 1, "gateway": gw, "version": version, "tz": "UTC0", "issued_at": MONDAY_NOON - 86400,
           "deny": ["+7"],
           "targets": {"ringing": {"number": RINGING, "via": ["gsm3"], "ring_timeout_s": 8},
                       "unreachable": {"number": UNREACHABLE, "via": ["gsm3"], "ring_timeout_s": 8},
                       "denied": {"number": "+74950000000", "via": ["gsm3"]},
                       "full": {"number": RINGING, "via": ["gsm3"], "max_calls": 0},
                       "scheduled": {"number": SCHEDULED, "via": ["gsm4"], "ring_timeout_s": 8}},
           "routes": [{"id": "main", "port": "gsm1", "targets": ["ringing"]}]}
    if probes is not None:
        doc["probes"] = probes
    return doc


def out_legs(rig, number: str) -> list[dict]:
    return [t for t in rig.network.truth() if t["dir"] == "out" and t["number"] == number]


def probe_records(controller, gw: str, target: str) -> list[dict]:
    return [r for (g, _, _), r in sorted(controller.records.items())
            if g == gw and r.get("t") == "probe" and r.get("target") == target]


def probe(rig, controller, gw: str, target: str) -> dict:
    """Run the probe command; -> the probe's record."""
    before = len(probe_records(controller, gw, target))
    res = controller.command(gw, "probe", {"target": target})
    assert res["ok"], res
    return controller.wait(lambda: probe_records(controller, gw, target)[before:], 30,
                           f"the record of the probe to {target}")[0]


def test_a_probe_to_a_ringing_centre_hangs_up_at_alerting_and_records_the_delay(rig, board, controller):
    rig.network.destination(RINGING, answer_after_s=6, talk_s=1, alert_after_s=ALERT_S)
    before = len(out_legs(rig, RINGING))
    rec = probe(rig, controller, board.id, "ringing")
    assert (rec["outcome"], rec["port"]) == ("ringing", "gsm3"), rec
    assert rec["pdd_ms"] is not None and 0 < rec["pdd_ms"] < 8000
    legs = until(lambda: (x := out_legs(rig, RINGING)[before:]) and x[0]["end"] and x, 30,
                 "the probe's leg, ended")
    assert len(legs) == 1 and legs[0]["answer"] is None, "nobody at the centre was made to answer"
    assert legs[0]["ended_by"] == "gateway" and legs[0]["ring_s"] < 5
    if "clock_control" in rig.features:  # the emulated network rings after ALERT_S; a bench's as it does
        assert ALERT_S * 1000 - 100 <= rec["pdd_ms"] <= ALERT_S * 1000 + 1500, rec


def test_a_probe_to_an_unreachable_centre_records_it(rig, board, controller):
    rig.network.destination(UNREACHABLE, unreachable=True)
    rec = probe(rig, controller, board.id, "unreachable")
    assert rec["outcome"] in ("unreachable", "no_answer"), rec
    assert rec["pdd_ms"] is None


def test_a_denied_unknown_or_full_target_is_refused_and_not_dialled(rig, board, controller):
    before = len(out_legs(rig, RINGING))
    for target, error in (("denied", "denied"), ("nowhere", "unknown_target"), ("full", "no_free_line")):
        res = controller.command(board.id, "probe", {"target": target})
        assert (res["ok"], res["error"]) == (False, error), res
    assert not [t for t in rig.network.truth() if t["dir"] == "out" and t["number"].startswith("+7")]
    assert len(out_legs(rig, RINGING)) == before


@pytest.mark.needs("broker_control")
def test_scheduled_probes_run_while_the_uplink_is_down(rig, board, controller):
    rig.network.destination(SCHEDULED, answer_after_s=6, talk_s=1)
    running = controller.wait_state(board.id).get("table_version") or 0
    body = board_table(board.id, running + 1, probes=[{"target": "scheduled", "every_s": 600},
                                                      {"target": "denied", "every_s": 600}])
    controller.push_table(board.id, json.dumps(body).encode(), board.key)
    assert controller.wait_ack(board.id, body["version"])["status"] == "applied"
    rig.broker.stop()  # the first scheduled probe is due 10 s after the table named its target
    try:
        assert out_legs(rig, SCHEDULED) == [], "probed before the uplink went down: the test proves nothing"
        until(lambda: out_legs(rig, SCHEDULED), 40, "a scheduled probe while the uplink is down")
    finally:
        rig.broker.start()
    rec = controller.wait(lambda: probe_records(controller, board.id, "scheduled"), 90,
                          "the scheduled probe's record, once the uplink is back")[0]
    assert rec["outcome"] == "ringing" and rec["pdd_ms"] is not None, rec
    denied = controller.wait(lambda: probe_records(controller, board.id, "denied"), 30, "the denied probe's record")
    assert (denied[0]["outcome"], denied[0]["port"]) == ("denied", None)
    assert not [t for t in rig.network.truth() if t["dir"] == "out" and t["number"].startswith("+7")]
