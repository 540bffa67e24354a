"""The real gw.fxo driver on the real micropython binary against the emulated FXO line; then an
emulated esp32-gsm-fxo board routing calls between its analog line and its GSM modem."""

from __future__ import annotations

import os
import time

import pytest

from emulator.network import GsmNetwork
from tests.conditions import until
from tests.firmware.test_gsm_unit import MpyGsm

pytestmark = pytest.mark.micropython

RING_EVERY_S = 0.6  # the emulated exchange's ringing cadence, shortened (an analog line: ~5 s)
FAST = {"cmd_ms": 1000, "caller_id_ms": 400, "ring_gap_ms": 1500, "retry_ms": 300}


class MpyFxo(MpyGsm):
    """An FxoLine in a micropython process (tests/firmware/mpy/line_harness.py), driven like MpyGsm."""

    def __init__(self, pty_path: str, timings: dict | None = None, heap: str = "220K"):
        super().__init__(pty_path, dict(FAST, **(timings or {})), heap=heap, kind="fxo")


@pytest.fixture
def world():
    """(network, MpyFxo) on port fxo1, started; both closed afterwards."""
    net = GsmNetwork(ring_limit_s=10, boot_s=0.3, fxo_ring_every_s=RING_EVERY_S)
    line = None
    try:
        line = MpyFxo(net.add_fxo("fxo1"))
        assert line.call("start", timeout=5) is True, line.log_text()
        yield net, line
    finally:
        if line is not None:
            line.close()
        net.close()


def test_startup_puts_the_line_on_hook(world):
    net, line = world
    assert line.call("status") == {"kind": "fxo", "ready": True, "calls": 0, "garbage": 0}
    assert net.commands("fxo1") == ["HOOK ON"]
    assert line.names() == []


def test_unresponsive_module_alarms_once_then_recovers():
    with GsmNetwork(boot_s=0.3) as net:
        path = net.add_fxo("fxo1")
        net.freeze("fxo1")
        line = MpyFxo(path)
        try:
            n = line.send("start")
            assert line.wait_event("alarm", 3)["arg"][0] == "fxo_unresponsive"
            time.sleep(1.5)  # a few retries go by
            assert line.call("status")["ready"] is False
            net.freeze("fxo1", False)
            assert line.result(n, 4) is True
            assert [e["arg"][0] for e in line.events if e["ev"] == "alarm"] == ["fxo_unresponsive", "fxo_recovered"]
        finally:
            line.close()


def test_inbound_ring_with_caller_id_answer_and_caller_hangs_up(world):
    net, line = world
    call = net.call("fxo1", "+380501234567", hangup_after_s=2.0)
    ring = line.wait_event("ring", 2)
    assert ring["arg"] == "+380501234567"
    assert line.call("answer") is True
    assert line.call("status")["calls"] == 1
    net.dtmf("fxo1", "12#")
    until(lambda: [e["arg"] for e in line.events if e["ev"] == "dtmf"] == ["1", "2", "#"], 2, "three digits")
    line.wait_event("hangup", 3)  # LOOP OFF
    got = call.wait(1)
    assert got["answered"] and got["ended_by"] == "caller" and got["talk_s"] > 1
    line.call("hangup")
    assert net.commands("fxo1")[-2:] == ["HOOK OFF", "HOOK ON"], "the relay goes back on hook after LOOP OFF"
    assert line.call("status")["calls"] == 0
    # the line is free again: the next call rings (a line left off hook would be busy)
    n = len(line.events)
    again = net.call("fxo1", "0441234567", hangup_after_s=0.5)
    assert line.wait_event("ring", 2, after=n)["arg"] == "0441234567"
    again.wait(2)
    t = net.inbound()
    assert [(x["result"], x["ended_by"]) for x in t] == [("answered", "caller"), ("abandoned", "caller")]


def test_caller_abandons_while_ringing(world):
    net, line = world
    t0 = time.monotonic()
    call = net.call("fxo1", "0501112233", hangup_after_s=1.0)
    assert line.wait_event("ring", 2)["arg"] == "0501112233"
    line.wait_event("hangup", 4)  # no RING for ring_gap_ms
    assert 0.6 + 1.5 <= time.monotonic() - t0 < 6  # the last RING came at 0.6 s (the default wait is 7 s)
    assert call.wait(1)["ended_by"] == "caller"
    assert line.names() == ["ring", "hangup"]
    assert "HOOK OFF" not in net.commands("fxo1")
    (t,) = net.inbound()
    assert (t["caller"], t["result"], t["attempts"], t["answered_by"]) == ("0501112233", "abandoned", [], None)


def test_a_refused_call_rings_out_without_being_reported_again(world):
    net, line = world
    call = net.call("fxo1", "0507654321")
    line.wait_event("ring", 2)
    line.call("hangup")  # an analog call cannot be refused: it rings on
    time.sleep(3 * RING_EVERY_S)
    assert call.state == "ringing" and line.names() == ["ring"], "the same call is no new ring"
    call.hangup()
    time.sleep(2.0)  # the RINGs stop: the line is idle again, silently
    assert line.names() == ["ring"] and line.call("status")["calls"] == 0
    assert "HOOK OFF" not in net.commands("fxo1")
    n = len(line.events)
    net.call("fxo1", "0507654322", hangup_after_s=0.5)
    assert line.wait_event("ring", 2, after=n)["arg"] == "0507654322"


def test_dial_outcomes(world):
    net, line = world
    net.destination("+380441000001", answer_after_s=0.3, talk_s=1.0)
    net.destination("+380441000002", busy=True)
    net.destination("+380441000003", no_answer=True)
    net.destination("1551", answer_after_s=0.3, talk_s=30)
    assert line.call("dial", "+380441000001", 3) == "answered"
    assert "DIAL 00380441000001" in net.commands("fxo1")
    assert line.call("status")["calls"] == 1
    line.wait_event("hangup", 3)  # the far end hangs up during the talk: LOOP OFF
    line.call("hangup")
    assert line.call("dial", "+380441000002", 3) == "busy"
    t0 = time.monotonic()
    assert line.call("dial", "+380441000003", 1.5) == "no_answer"  # our ring timeout
    assert 1.3 < time.monotonic() - t0 < 10  # waited for the ring timeout, not for ever
    assert line.call("dial", "+380449999999", 3) == "failed"  # unknown number: unreachable, LOOP OFF
    n = len(net.commands("fxo1"))
    for bad in ("12#3", "+", "", "+380 44"):
        assert line.call("dial", bad, 1) == "failed"
    assert len(net.commands("fxo1")) == n, "a refused number never reaches the module"
    assert line.call("dial", "1551", 3) == "answered"
    n = len(line.events)
    line.call("hangup")
    time.sleep(0.3)
    assert line.names(n) == [], "our own release is no hangup event"
    assert line.names().count("hangup") == 1
    assert line.call("status")["calls"] == 0
    outs = [(t["number"], t["result"], t["ended_by"], t["detail"]) for t in net.truth()]
    assert outs == [("+380441000001", "answered", "destination", "answered"),
                    ("+380441000002", "busy", "network", "busy"),
                    ("+380441000003", "no_answer", "gateway", "cancelled"),
                    ("+380449999999", "failed", "network", "unreachable"),
                    ("1551", "answered", "gateway", "answered")]
    cmds = net.commands("fxo1")
    assert cmds.count("HOOK OFF") == 5 and cmds[-1] == "HOOK ON"


def test_garbage_is_skipped_and_counted(world):
    net, line = world
    net.garbage("fxo1")  # noise without a line end: glued in front of the next RING
    call = net.call("fxo1", "+380671234567", hangup_after_s=1.5)
    assert line.wait_event("ring", 2)["arg"] == "+380671234567"
    net.garbage("fxo1", b"BOGUS LINE\r\n" + b"X" * 300 + b"\r\nDTMF\r\n")
    until(lambda: line.call("status")["garbage"] == 4, 2, "four bad lines counted")
    assert line.call("answer") is True  # still answering
    line.wait_event("hangup", 4)
    assert call.wait(1)["answered"]


def test_power_cycle_drops_the_call_and_the_network_speaks_the_line_protocol():
    """The emulated module alone, from a plain pty, no firmware."""
    with GsmNetwork(boot_s=0.3, fxo_ring_every_s=RING_EVERY_S) as net:
        fd = os.open(net.add_fxo("fxo1"), os.O_RDWR | os.O_NOCTTY)
        buf = bytearray()

        def say(text):
            os.write(fd, text.encode() + b"\r\n")

        def expect(line, timeout=2.0):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if b"\r\n" in buf:
                    got, _, rest = bytes(buf).partition(b"\r\n")
                    buf[:] = rest
                    assert got.decode() == line
                    return
                ready = os.read(fd, 256) if _readable(fd, 0.05) else b""
                buf.extend(ready)
            raise AssertionError("no %r from the module; have %r" % (line, bytes(buf)))

        try:
            say("PING")
            expect("OK")
            say("DIAL 123")
            expect("ERR no dial tone")
            say("FOO")
            expect("ERR unknown command")
            call = net.call("fxo1", "0441112233")
            expect("RING")
            expect("CID 0441112233")
            expect("RING")
            say("HOOK OFF")
            expect("OK")
            assert call.state == "active"
            assert net.call("fxo1", "0441112244").wait(1)["result"] == "busy"
            net.power_cycle("fxo1")
            got = call.wait(1)
            assert got["answered"] and got["ended_by"] == "gateway"
            assert net.inbound()[0]["result"] == "modem_reset"
            time.sleep(0.4)
            say("PING")  # booted again, on hook
            expect("OK")
            net.destination("+380501234567", answer_after_s=0.3, talk_s=0.5)
            say("HOOK OFF")
            expect("OK")
            say("DIAL 00380501234567")
            expect("OK")
            expect("ANSWERED")
            expect("LOOP OFF")
            say("HOOK ON")
            expect("OK")
            out = net.truth()[-1]
            assert (out["dir"], out["number"], out["result"], out["ended_by"]) == (
                "out", "+380501234567", "answered", "destination")
        finally:
            os.close(fd)


def _readable(fd, timeout):
    import select

    return bool(select.select([fd], [], [], timeout)[0])


# ------------------------------------------------------------------ the whole board

CENTRE, SWITCHBOARD = "+380629000001", "+380445550000"  # centre: in tests/hil/conftest.py CENTRES


def fxo_table(gw):
    from tests.hil.conftest import MONDAY_NOON

    return {"schema": 1, "gateway": gw, "version": 1, "issued_at": MONDAY_NOON - 86400, "tz": "UTC0",
            "deny": [], "closed": [],
            "targets": {"centre": {"number": CENTRE, "via": ["gsm1"], "ring_timeout_s": 5},
                        "switchboard": {"number": SWITCHBOARD, "via": ["fxo1"], "ring_timeout_s": 5}},
            "routes": [{"id": "analog-in", "port": "fxo1", "targets": ["centre"]},
                       {"id": "gsm-in", "port": "gsm1", "targets": ["switchboard"]}]}


@pytest.mark.slow
def test_board_routes_between_the_analog_line_and_gsm():
    from controller.brokers import Mosquitto
    from hil_tests.peer import ControllerPeer
    from tests.hil.conftest import start_board

    gw = "gw-fxo-1"
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="fxo-controller") as peer:
        rig = start_board(gw, broker, peer, profile="esp32-gsm-fxo", table=fxo_table(gw))
        try:
            net = rig.network
            net.destination(SWITCHBOARD, answer_after_s=0.4, talk_s=30)

            # an analog caller, routed to the centre dialled on the GSM modem
            lived = net.call("fxo1", "0441230001").wait(20)
            assert lived["answered"] and lived["connected_to"] == CENTRE and lived["ended_by"] == "gateway"
            (t,) = [x for x in net.inbound() if x["caller"] == "0441230001"]
            assert [(a["port"], a["number"], a["result"]) for a in t["attempts"]] == [("gsm1", CENTRE, "answered")]
            assert t["answer"] >= t["start"] + 0.35 and t["bridge_s"] >= 1.0  # late answer, then bridged

            # a mobile caller, routed to the switchboard dialled on the analog line; the caller hangs up once the
            # board answered (not after a fixed patience: a loaded machine may take seconds to dial the line)
            mobile = net.call("gsm1", "+380671230002")
            until(lambda: mobile.state != "ringing", 20, "the board to answer the mobile caller")
            mobile.hangup()
            lived = mobile.wait(20)
            assert lived["answered"] and lived["connected_to"] == SWITCHBOARD and lived["ended_by"] == "caller"
            (t,) = [x for x in net.inbound() if x["caller"] == "+380671230002"]
            assert [(a["port"], a["number"], a["result"]) for a in t["attempts"]] == [
                ("fxo1", SWITCHBOARD, "answered")]
            assert f"DIAL 00{SWITCHBOARD[1:]}" in net.commands("fxo1")
            until(lambda: net.truth()[-1]["end"] is not None, 20, "the analog leg released")
            assert net.truth()[-1]["ended_by"] == "gateway" and net.commands("fxo1")[-1] == "HOOK ON"

            recs = peer.wait_calls(gw, 2, timeout=30)
            got = {r["caller"]: (r["port"], r["outcome"], r["route"], r["target"]) for r in recs}
            assert got == {"0441230001": ("fxo1", "answered", "analog-in", "centre"),
                           "+380671230002": ("gsm1", "answered", "gsm-in", "switchboard")}
        except BaseException:
            print(rig.console()[-6000:])
            raise
        finally:
            rig.close()
