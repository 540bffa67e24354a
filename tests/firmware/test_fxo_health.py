"""FXO module health on the real micropython binary: an idle line is PINGed, a hung module is reset and
set up again (alarms "fxo_unresponsive" then "fxo_recovered"), the line is not used while down, and a
line with a call on it is never pinged nor reset. Then the same on a whole emulated esp32-gsm-fxo board,
where the reset is the board's reset line for the port (`HW port_reset fxo1`, the rig power-cycles it)."""

from __future__ import annotations

import time

import pytest

from emulator.network import GsmNetwork
from tests.conditions import until
from tests.firmware.test_fxo import FAST, RING_EVERY_S
from tests.firmware.test_gsm_unit import MpyGsm

pytestmark = pytest.mark.micropython

HEALTH = dict(FAST, ping_ms=300, retry_ms=200, fail_limit=2, boot_ms=400)


def alarms(line) -> list[str]:
    return [e["arg"][0] for e in line.events if e["ev"] == "alarm"]


@pytest.fixture
def world():
    """(network, FxoLine in micropython with a reset hook) on port fxo1, started."""
    net = GsmNetwork(ring_limit_s=20, boot_s=0.3, fxo_ring_every_s=RING_EVERY_S)
    line = None
    try:
        line = MpyGsm(net.add_fxo("fxo1"), HEALTH, reset_hook=True, kind="fxo")
        assert line.call("start", timeout=5) is True, line.log_text()
        yield net, line
    finally:
        if line is not None:
            line.close()
        net.close()


def test_idle_line_is_pinged(world):
    net, line = world
    until(lambda: net.commands("fxo1").count("PING") >= 2, 10, "two PINGs")
    assert line.call("status")["ready"] is True and alarms(line) == []


def test_hung_module_is_reset_and_the_line_comes_back(world):
    net, line = world
    until(lambda: "PING" in net.commands("fxo1"), 10, "a first PING")
    net.freeze("fxo1")  # answers nothing from now on
    line.wait_event("alarm", 15, pred=lambda e: e["arg"][0] == "fxo_unresponsive")
    assert line.call("status")["ready"] is False
    n = len(net.commands("fxo1"))
    assert line.call("dial", "+380441000001", 2) == "failed", "a line that is down takes no call"
    assert "HOOK OFF" not in net.commands("fxo1")[n:]
    line.wait_event("reset_hook", 10)
    net.power_cycle("fxo1")  # what the board's reset line does (the harness's hook only reports the pulse)
    line.wait_event("alarm", 15, pred=lambda e: e["arg"][0] == "fxo_recovered")
    assert line.call("status")["ready"] is True
    assert alarms(line) == ["fxo_unresponsive", "fxo_recovered"], "one alarm per outage"
    # usable again: an inbound call rings and is answered
    net.call("fxo1", "0441234567", hangup_after_s=1.5)
    assert line.wait_event("ring", 5)["arg"] == "0441234567"
    assert line.call("answer") is True


def test_a_line_with_a_call_is_never_pinged_nor_reset(world):
    net, line = world
    call = net.call("fxo1", "+380501234567")
    line.wait_event("ring", 5)
    assert line.call("answer") is True
    net.freeze("fxo1")  # hung in the middle of the call
    n = len(net.commands("fxo1"))
    time.sleep(10 * HEALTH["ping_ms"] / 1000)  # ten PING periods go by (an absence: nothing to wait on)
    assert "PING" not in net.commands("fxo1")[n:]
    assert [e for e in line.events if e["ev"] in ("reset_hook", "alarm")] == []
    assert line.call("status") == {"kind": "fxo", "ready": True, "calls": 1, "garbage": 0}
    net.freeze("fxo1", False)
    call.hangup()  # LOOP OFF
    line.wait_event("hangup", 5)
    line.call("hangup")
    n = len(net.commands("fxo1"))
    until(lambda: "PING" in net.commands("fxo1")[n:], 10, "PINGs again once the line is idle")
    assert alarms(line) == []


def test_a_module_hung_from_the_start_is_reset():
    with GsmNetwork(boot_s=0.3) as net:
        path = net.add_fxo("fxo1")
        net.freeze("fxo1", cfun_recovers=False)
        line = MpyGsm(path, HEALTH, reset_hook=True, kind="fxo")
        try:
            n = line.send("start")
            line.wait_event("reset_hook", 15)  # after fail_limit tries
            assert alarms(line) == ["fxo_unresponsive"]
            net.power_cycle("fxo1")
            assert line.result(n, 15) is True
            assert alarms(line) == ["fxo_unresponsive", "fxo_recovered"]
        finally:
            line.close()


# ------------------------------------------------------------------ the whole board


@pytest.mark.slow
def test_board_resets_its_hung_fxo_module_and_reports_it():
    from controller.brokers import Mosquitto
    from emulator.board import EmulatedRig
    from hil_tests.peer import ControllerPeer
    from tests.hil.conftest import KEY, MONDAY_NOON

    gw = "gw-fxo-health"
    timings = {"fxo1": {"ping_ms": 500, "retry_ms": 300, "cmd_ms": 1000, "fail_limit": 2, "boot_ms": 500}}
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="fxo-health") as peer:
        rig = EmulatedRig(gw, KEY, broker.url, profile="esp32-gsm-fxo", line_timings=timings)
        try:
            rig.network.set_time(MONDAY_NOON)
            rig.power_on()
            peer.wait_state(gw, lambda s: s.get("online") and all(p["ready"] for p in s["ports"].values()),
                            timeout=60)
            until(lambda: "PING" in rig.network.commands("fxo1"), 20, "the board to PING its FXO module")
            mark = rig.console_mark()
            rig.network.freeze("fxo1")
            rig.wait_console(r"^HW port_reset fxo1$", timeout=30, after=mark)

            def codes():
                return [r["code"] for (g, _, _), r in sorted(peer.records.items())
                        if g == gw and r.get("t") == "alarm"]

            peer.wait(lambda: "fxo_recovered" in codes(), 40, "the fxo_recovered alarm")
            assert codes() == ["fxo_unresponsive", "fxo_recovered"]
            assert all(r.get("port") == "fxo1" for (g, _, _), r in peer.records.items()
                       if g == gw and r.get("t") == "alarm")
            peer.wait_state(gw, lambda s: s["ports"]["fxo1"]["ready"], timeout=30)
            assert rig.boots == 1, "the module was reset, not the board"
        except BaseException:
            print(rig.console()[-6000:])
            raise
        finally:
            rig.close()
