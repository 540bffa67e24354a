"""A board under test on the rig `--rig FILE` names (default hil_tests/rigs/emulated.toml): the real firmware,
a real broker, the controller's side of the contract. The fixtures `rig`, `board` and `controller` come from
the citygate_hil pytest plugin (hil_tests/plugin.py); this file sets the scenarios' world up on them."""

from __future__ import annotations

import calendar
import json

import pytest

from emulator.board import EmulatedRig
from hil_tests.peer import ControllerPeer

KEY = "5a" * 32  # start_board's boards (tests/firmware); the plugin's board has the rig file's key
MONDAY_NOON = calendar.timegm((2026, 11, 23, 12, 0, 0))  # network time the modems report

CENTRES = {
    "+380629000001": dict(answer_after_s=0.4, talk_s=1.5),   # centre-a
    "+380629000002": dict(answer_after_s=0.4, talk_s=1.5),   # centre-b
    "+380629000003": dict(busy=True),                         # busy-c
    "+380629000004": dict(no_answer=True),                    # silent-d
    "+74950000000": dict(answer_after_s=0.2, talk_s=1),       # occupied: must never be dialled
}


def scenario_table(gw: str, version: int = 1, **extra) -> dict:
    """One route per scenario, told apart by the caller's prefix."""
    targets = {
        "centre-a": {"number": "+380629000001", "via": ["gsm3"], "ring_timeout_s": 3, "max_calls": 1},
        "centre-b": {"number": "+380629000002", "via": ["gsm4", "gsm3"], "ring_timeout_s": 3},
        "busy-c": {"number": "+380629000003", "via": ["gsm3", "gsm4"], "ring_timeout_s": 3},
        "silent-d": {"number": "+380629000004", "via": ["gsm3", "gsm4"], "ring_timeout_s": 2},
        "occupied-e": {"number": "+74950000000", "via": ["gsm3", "gsm4"], "ring_timeout_s": 3},
    }
    r = [
        ("basic", "+38050", ["centre-a"], {}),
        ("failover-busy", "+38051", ["busy-c", "centre-b"], {}),
        ("failover-silent", "+38052", ["silent-d", "centre-b"], {}),
        ("all-busy", "+38053", ["busy-c"], {"fallback": {"action": "callback"}}),
        ("office-hours", "+38054", ["centre-b"], {"hours": [{"days": "12345", "start": "09:00", "end": "17:00"}],
                                                  "after_hours": {"action": "callback"}}),
        ("deny", "+38055", ["occupied-e", "centre-b"], {}),
        ("rr", "+38056", ["centre-a", "centre-b"], {"strategy": "round_robin"}),
        ("cap", "+38057", ["centre-a"], {"fallback": {"action": "callback"}}),
    ]
    routes = [{"id": rid, "port": "*", "caller": [prefix], "targets": t, **more} for rid, prefix, t, more in r]
    doc = {"schema": 1, "gateway": gw, "version": version, "issued_at": MONDAY_NOON - 86400, "tz": "UTC0",
           "deny": ["+7"], "closed": [], "targets": targets, "routes": routes}
    doc.update(extra)
    return doc


@pytest.fixture(scope="module")
def rig_prepare():
    """Before the board is powered: Monday noon on the network's clock (where the rig sets it), the centres."""
    def prepare(rig):
        if "clock_control" in rig.features:
            rig.network.set_time(MONDAY_NOON)
        for number, behaviour in CENTRES.items():
            rig.network.destination(number, **behaviour)
    return prepare


@pytest.fixture(scope="module")
def board(board, controller, rig, request):
    """The plugin's board, running the module's table: `board_table(gw_id)` in the module, else scenario_table."""
    make = getattr(request.module, "board_table", scenario_table)
    body = make(board.id)
    # a real board keeps its flash between modules and runs: a version above the one it runs, or it refuses it
    running = controller.wait_state(board.id).get("table_version") or 0
    body["version"] = max(body["version"], running + 1)
    controller.push_table(board.id, json.dumps(body).encode(), board.key)
    ack = controller.wait_ack(board.id, body["version"], timeout=30)
    assert ack["status"] == "applied", ack
    return board


def start_board(gw: str, broker, peer: ControllerPeer, profile: str = "esp32-wrover-4gsm", table: dict | None = None):
    """A board of its own outside the rig (tests/firmware): an emulated board with the centres, online."""
    rig = EmulatedRig(gw, KEY, broker.url, profile=profile)
    rig.network.set_time(MONDAY_NOON)
    for number, behaviour in CENTRES.items():
        rig.network.destination(number, **behaviour)
    rig.power_on()
    try:
        peer.wait_state(gw, lambda s: s.get("online") and all(p["ready"] for p in s["ports"].values()), timeout=40)
        if table is not False:
            body = table or scenario_table(gw)
            peer.push_table(gw, json.dumps(body).encode(), KEY)
            peer.wait_ack(gw, body["version"], timeout=30)
    except BaseException:
        print(rig.console())
        rig.close()
        raise
    return rig
