"""The uplink goes down while citizens keep calling: calls are still routed at the edge, then every
record arrives exactly once and the board's counters equal what really happened."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.needs("broker_control")]
OUTAGE_S = float(os.environ.get("CITYGATE_OUTAGE_S", "40"))


def board_table(gw: str, version: int = 1) -> dict:
    """The table the board runs (tests/hil/conftest.py pushes it)."""
    return {"schema": 1, "gateway": gw, "version": version, "tz": "UTC0",
            "targets": {"centre": {"number": "+380629000001", "via": ["gsm2"], "ring_timeout_s": 3},
                        "busy": {"number": "+380629000003", "via": ["gsm2"], "ring_timeout_s": 3}},
            "routes": [{"id": "main", "port": "gsm1", "caller": ["+38050"], "targets": ["centre"]},
                       {"id": "full", "port": "gsm1", "caller": ["+38053"], "targets": ["busy"],
                        "fallback": {"action": "callback"}}]}


def test_broker_outage_loses_no_record_and_counters_match_truth(rig, board, controller):
    peer, broker, GW = controller, rig.broker, board.id
    rig.network.call("gsm1", "+380500000001").wait(30)
    peer.wait_calls(GW, 1)
    broker.stop()
    t_down = time.monotonic()
    try:
        callers = [f"+3805{3 if i % 3 == 2 else 0}00000{i:03d}" for i in range(2, 8)]
        for caller in callers:  # calls keep being routed while the uplink is gone
            lived = rig.network.call("gsm1", caller).wait(30)
            assert lived["answered"] == caller.startswith("+38050"), lived
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
    finally:
        broker.start()
    calls = peer.wait_calls(GW, 1 + len(callers), timeout=120)
    result = peer.command(GW, "counters")
    assert result["ok"], result
    seq = result["result"]["seq"]
    counters = peer.wait(lambda: next((r for (g, _, s), r in peer.records.items()
                                       if g == GW and s == seq), None), 60, "the counters record")
    truth = rig.network.inbound()
    assert sorted(r["caller"] for r in calls) == sorted(t["caller"] for t in truth), "one record per real call"
    seqs = sorted(s for (g, _, s) in peer.records if g == GW)
    assert seqs == list(range(1, len(seqs) + 1)), "no seq is missing"
    answered = sum(t["result"] == "answered" for t in truth)
    unanswered = len(truth) - answered
    routes = counters["routes"]
    assert routes["main"]["answered"] == answered
    assert routes["full"]["callback"] == unanswered
    assert counters["calls"] == len(truth)
    talk_truth = sum(t["bridge_s"] or 0 for t in truth)
    assert abs(routes["main"]["talk_s"] - talk_truth) <= len(truth), (routes, talk_truth)
