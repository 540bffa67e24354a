"""Power cuts at chosen flash operations of a running board: during a table update and while a
call is being recorded. The board must boot with the old or the new table, its counters never go
back, and no record it had confirmed is lost or duplicated. (tests/firmware/test_store.py sweeps
every single block operation of the store; this checks the whole board end to end.)"""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.needs("power_cut_injection")]


def table(version: int, gw: str) -> dict:
    pad = [{"id": f"pad-{i}", "port": "gsm9", "targets": ["centre"]} for i in range(2 * version)]
    return {"schema": 1, "gateway": gw, "version": version, "tz": "UTC0",
            "targets": {"centre": {"number": "+380629000001", "via": ["gsm2"], "ring_timeout_s": 3}},
            "routes": [{"id": f"main-v{version}", "port": "gsm1", "targets": ["centre"]}] + pad}


def board_table(gw: str) -> dict:
    """The table the board runs when the module starts (tests/hil/conftest.py pushes it)."""
    return table(1, gw)


def counters(peer, gw: str) -> dict:
    result = peer.command(gw, "counters", timeout=30)
    seq = result["result"]["seq"]
    return peer.wait(lambda: next((r for (g, _, s), r in peer.records.items() if g == gw and s == seq), None),
                     30, "counters record")


@pytest.fixture(scope="module")
def powered(rig, board, controller):
    return rig, controller


def reboot_after_cut(rig, peer, mark: int, boot: int) -> dict:
    """After the cut the console shows; power on, and the board is back with a higher boot count than `boot`."""
    rig.console.expect("POWER-CUT", timeout=30, after=mark)
    rig.power.on()
    return peer.wait_state(rig.board.id, lambda s: s.get("online") and s.get("boot", 0) > boot
                           and all(p["ready"] for p in s["ports"].values()), timeout=40)


@pytest.mark.parametrize("cut_at", [1, 2, 4, 7, 11])
def test_power_cut_during_a_table_update(powered, cut_at):
    rig, peer = powered
    GW = rig.board.id
    before = peer.wait_state(GW, lambda s: s.get("table_version"))["table_version"]
    boot = peer.wait_state(GW)["boot"]
    mark = rig.console.mark()
    rig.flash.cut_after(cut_at)
    peer.push_table(GW, json.dumps(table(before + 1, GW)).encode(), rig.board.key)
    state = reboot_after_cut(rig, peer, mark, boot)
    assert state["table_version"] in (before, before + 1), "booted with a table that is neither old nor new"
    # the retained new table is delivered again and applied
    state = peer.wait_state(GW, lambda s: s.get("table_version") == before + 1, timeout=40)
    lived = rig.network.call("gsm1", f"+3805011{cut_at:05d}").wait(30)
    assert lived["answered"], "the board routes calls after the cut"


@pytest.mark.parametrize("cut_at", [1, 2, 3])
def test_power_cut_while_a_call_is_recorded(powered, cut_at):
    rig, peer = powered
    GW = rig.board.id
    rig.network.call("gsm1", "+380500000000").wait(30)
    before = counters(peer, GW)
    confirmed = {s: r for (g, _, s), r in peer.records.items() if g == GW}
    boot = peer.wait_state(GW)["boot"]
    mark = rig.console.mark()
    rig.flash.cut_after(cut_at)
    call = calls_until_the_cut(rig, mark, f"+380502{cut_at:02d}")  # the cut hits a record, its ack or a segment move
    reboot_after_cut(rig, peer, mark, boot)
    call.wait(30)
    after = counters(peer, GW)
    assert after["calls"] >= before["calls"], "counters went back"
    for rid, c in before["routes"].items():
        for name, n in c.items():
            assert after["routes"].get(rid, {}).get(name, 0) >= n, f"counter {rid}.{name} went back"
    sid = _store_id(peer, GW)
    for seq, rec in confirmed.items():
        assert peer.records[(GW, sid, seq)] == rec
    seqs = sorted(s for (g, _, s) in peer.records if g == GW)
    assert len(seqs) == len(set(seqs)) and seqs == list(range(1, len(seqs) + 1))


def calls_until_the_cut(rig, mark: int, caller_prefix: str, most: int = 4):
    """Place calls one after another until the armed power cut hits; the call it hit.

    A call's record, its ack and the store's segment move (one call in eight) take one to three block
    operations, so the n-th operation from now falls within the first few calls, not always the first."""
    for i in range(most):
        call = rig.network.call("gsm1", f"{caller_prefix}{i:04d}")
        try:
            call.wait(30)
        except TimeoutError:
            pass  # the board lost power while the caller waited: the cut came
        try:
            rig.console.expect("POWER-CUT", timeout=10, after=mark)  # the record's ack follows the call's end
            return call
        except TimeoutError:
            if i == most - 1:
                raise
    raise AssertionError("unreachable")


def _store_id(peer, gw: str) -> str:
    ids = {sid for (g, sid, _) in peer.records if g == gw}
    assert len(ids) == 1, f"the store id changed across power cuts: {ids}"
    return ids.pop()
