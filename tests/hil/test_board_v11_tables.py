"""Contract v1.1 tables (DESIGN §5a) of the full 32 KiB on the smallest profile (issue 8: every valid table
up to 32 KiB is accepted on every profile). The shapes are hil_tests.v11_tables'; the loader's heap for each:
bench/table_memory_bench.py --shape NAME. Shapes that do not fit yet are listed in the README."""

from __future__ import annotations

from controller.brokers import Mosquitto
from hil_tests import v11_tables
from hil_tests.peer import ControllerPeer
from protocols import routing
from tests.hil.conftest import KEY, MONDAY_NOON
from tests.hil.test_board_trust import GW_SMALL, _heap_state, _next_ack, _start_small


def test_a_32k_table_of_opening_hours_applies_on_esp32_2gsm_and_keeps_each_routes_hours():
    """64 routes sharing ~600 opening-hours windows: kept as a tuple each, the windows took 54 KB on the unix
    port and the loader needed 82,890 B free (the board has ~48 KB): refused too_big. Packed one small int a
    window, with no path string made per window, it needs ~39 KB (bench/table_memory_bench.py --shape hours),
    within the ~48 KB the board has free, but not always in one piece beside the running table: then the board
    restarts once onto a fresh heap, as for any table that fits only alone. The table applies, and the board decides as the controller's copy of the same code: r1
    (gsm2) is open at Monday noon and dials, r2 (gsm1) is closed then and rejects `after_hours`."""
    body = v11_tables.hours_table(GW_SMALL, version=2)
    table = routing.load(body)
    assert len(body) > 32_000 and len(table.routes) == 64
    assert sum(len(r.hours) for r in table.routes) > 500
    open_caller, closed_caller = "+380500177000", "+380500277000"  # r1 names +3805001, r2 +3805002
    assert routing.decide(table, "gsm2", open_caller, MONDAY_NOON).as_dict() == {
        "action": "dial", "route": "r1", "targets": ["a"], "reason": "ok"}
    assert routing.decide(table, "gsm1", closed_caller, MONDAY_NOON).as_dict() == {
        "action": "reject", "route": "r2", "targets": [], "reason": "after_hours"}
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="v11-controller") as peer:
        rig = _start_small(broker, peer, None)
        try:
            rig.network.destination("+380620000001", answer_after_s=0.4, talk_s=1.5)
            boot = _heap_state(peer, 1, "before")["boot"]
            before = len(peer.acks.get(GW_SMALL, []))
            peer.push_table(GW_SMALL, body, KEY)
            ack = _next_ack(peer, GW_SMALL, before, timeout=90)
            assert ack["status"] == "applied" and ack["sha256"] == table.sha256, ack
            restarts = _heap_state(peer, 2, "after")["boot"] - boot
            assert restarts <= 1, restarts  # at most the one restart onto a fresh heap that a crowded heap costs
            print("restarts to find room for the table:", restarts)
            lived = rig.network.call("gsm2", open_caller).wait(30)
            assert lived["answered"] and lived["connected_to"] == "+380620000001", lived
            refused = rig.network.call("gsm1", closed_caller).wait(30)
            assert not refused["answered"] and refused["connected_to"] is None, refused
            records = peer.wait(lambda: (lambda got: len(got) == 2 and got)(
                {r["caller"]: r for r in peer.calls(GW_SMALL) if r.get("caller") in (open_caller, closed_caller)}),
                30, "both call records")
            assert (records[open_caller]["route"], records[open_caller]["target"]) == ("r1", "a"), records
            assert (records[closed_caller]["outcome"], records[closed_caller]["reason"]) == (
                "after_hours", "after_hours"), records
        finally:
            print(rig.console()[-3000:])
            rig.close()
