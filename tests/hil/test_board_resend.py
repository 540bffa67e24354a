"""A batch of records lost on the way (a broker restart, a dropped connection's last publish) is sent
again while newer calls keep the board sending: the resend clock runs from the last progress of the
controller's ack mark, not from the last send (gw.link.RESEND_AFTER_MS, 30 s)."""

from __future__ import annotations

import time

import pytest

from tests.conditions import until

pytestmark = pytest.mark.slow


def board_table(gw: str, version: int = 1) -> dict:
    """The table the board runs (tests/hil/conftest.py pushes it)."""
    return {"schema": 1, "gateway": gw, "version": version, "tz": "UTC0",
            "targets": {"centre": {"number": "+380629000001", "via": ["gsm2"], "ring_timeout_s": 3}},
            "routes": [{"id": "main", "port": "gsm1", "targets": ["centre"]}]}


def _still_lost(peer) -> set:
    """The records of the lost message that have not arrived since (by store id and seq: a real bench's
    caller modem calls from its own SIM's number, so callers do not tell calls apart there)."""
    with peer.lock:
        return {key for key in peer.lost if key not in peer.records}


def test_a_lost_batch_is_sent_again_while_newer_calls_keep_coming(rig, board, controller):
    peer, GW = controller, board.id
    rig.network.destination("+380629000001", answer_after_s=0.3, talk_s=0.5)
    rig.network.call("gsm1", "+380500000001").wait(30)
    until(lambda: peer.calls(GW), 60, "the first call's record")
    peer.drop_events = 1  # the next events message is lost
    rig.network.call("gsm1", "+380500000002").wait(30)
    until(lambda: peer.dropped == 1, 60, "the second call's batch lost on the way")
    lost = _still_lost(peer)
    assert lost, "the lost message held records"
    t0, n = time.monotonic(), 3
    while _still_lost(peer) and time.monotonic() - t0 < 120 and n < 300:
        rig.network.call("gsm1", f"+38050000{n:04d}").wait(30)  # newer records keep the board sending
        n += 1
    took = time.monotonic() - t0
    assert not _still_lost(peer), (
        f"the lost records {sorted(lost)} were not sent again within {took:.0f} s while {n - 3} newer calls were sent")
    assert n > 4, "newer calls were sent while the lost batch waited (else this shows nothing)"
