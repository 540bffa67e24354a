"""Power cuts at chosen flash operations of a running board: during a table update and while a
call is being recorded. The board must boot with the old or the new table, its counters never go
back, and no record it had confirmed is lost or duplicated. (tests/firmware/test_store.py sweeps
every single block operation of the store; this checks the whole board end to end.)"""

from __future__ import annotations

import json

import pytest

from controller.brokers import Mosquitto
from hil_tests.peer import ControllerPeer
from tests.hil.conftest import KEY, start_board

pytestmark = pytest.mark.slow
GW = "gw-power-1"


def table(version: int) -> dict:
    pad = [{"id": f"pad-{i}", "port": "gsm9", "targets": ["centre"]} for i in range(2 * version)]
    return {"schema": 1, "gateway": GW, "version": version, "tz": "UTC0",
            "targets": {"centre": {"number": "+380629000001", "via": ["gsm2"], "ring_timeout_s": 3}},
            "routes": [{"id": f"main-v{version}", "port": "gsm1", "targets": ["centre"]}] + pad}


def counters(peer) -> dict:
    result = peer.command(GW, "counters", timeout=30)
    seq = result["result"]["seq"]
    return peer.wait(lambda: next((r for (g, _, s), r in peer.records.items() if g == GW and s == seq), None),
                     30, "counters record")


@pytest.fixture(scope="module")
def powered():
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="power-controller") as peer:
        rig = start_board(GW, broker, peer, profile="esp32-2gsm", table=table(1))
        try:
            yield rig, peer
        finally:
            print(rig.console()[-3000:])
            rig.close()


def reboot_after_cut(rig, peer, mark: int) -> dict:
    rig.wait_console("POWER-CUT", timeout=30, after=mark)
    boots = rig.boots
    rig.power_on()
    return peer.wait_state(GW, lambda s: s.get("online") and s.get("boot", 0) >= boots + 1
                           and all(p["ready"] for p in s["ports"].values()), timeout=40)


@pytest.mark.parametrize("cut_at", [1, 2, 4, 7, 11])
def test_power_cut_during_a_table_update(powered, cut_at):
    rig, peer = powered
    before = peer.wait_state(GW, lambda s: s.get("table_version"))["table_version"]
    mark = rig.console_mark()
    rig.power_cut_after(cut_at)
    peer.push_table(GW, json.dumps(table(before + 1)).encode(), KEY)
    state = reboot_after_cut(rig, peer, mark)
    assert state["table_version"] in (before, before + 1), "booted with a table that is neither old nor new"
    # the retained new table is delivered again and applied
    state = peer.wait_state(GW, lambda s: s.get("table_version") == before + 1, timeout=40)
    lived = rig.network.call("gsm1", f"+3805011{cut_at:05d}").wait(30)
    assert lived["answered"], "the board routes calls after the cut"


@pytest.mark.parametrize("cut_at", [1, 3])
def test_power_cut_while_a_call_is_recorded(powered, cut_at):
    rig, peer = powered
    rig.network.call("gsm1", "+380500000000").wait(30)
    before = counters(peer)
    confirmed = {s: r for (g, _, s), r in peer.records.items() if g == GW}
    mark = rig.console_mark()
    rig.power_cut_after(cut_at)
    call = rig.network.call("gsm1", f"+3805022{cut_at:05d}")
    reboot_after_cut(rig, peer, mark)  # the cut hits the call's record, or an ack just before it
    call.wait(30)
    after = counters(peer)
    assert after["calls"] >= before["calls"], "counters went back"
    for rid, c in before["routes"].items():
        for name, n in c.items():
            assert after["routes"].get(rid, {}).get(name, 0) >= n, f"counter {rid}.{name} went back"
    sid = _store_id(peer)
    for seq, rec in confirmed.items():
        assert peer.records[(GW, sid, seq)] == rec
    seqs = sorted(s for (g, _, s) in peer.records if g == GW)
    assert len(seqs) == len(set(seqs)) and seqs == list(range(1, len(seqs) + 1))


def _store_id(peer) -> str:
    ids = {sid for (g, sid, _) in peer.records if g == GW}
    assert len(ids) == 1, f"the store id changed across power cuts: {ids}"
    return ids.pop()
