"""The real gw.gsm driver on the real micropython binary against the emulated GSM network (both dialects)."""

from __future__ import annotations

import os
import select
import time

import pytest

from emulator.network import GsmNetwork
from tests.conditions import until
from tests.firmware.test_gsm_unit import MpyGsm

pytestmark = pytest.mark.micropython

# The network rings every 3 s, so the driver's "RINGs stopped" gap must be longer than that.
TIMINGS = {"ring_gap_ms": 4500}
DIALECTS = ["sim800", "sim7600"]


@pytest.fixture
def world(request):
    """world(dialect, ports=("gsm1",), **line_kw) -> (network, {port: MpyGsm}); everything closed afterwards."""
    made = []

    def make(dialect, ports=("gsm1",), timings=None, **kw):
        net = GsmNetwork(ring_limit_s=20, boot_s=0.3)
        made.append(net)
        lines = {}
        for port in ports:
            lines[port] = MpyGsm(net.add_modem(port, dialect), dict(TIMINGS, **(timings or {})), **kw)
            made.append(lines[port])
        for line in lines.values():
            assert line.call("start", timeout=15) is True, line.log_text()
        return net, lines

    yield make
    for thing in reversed(made):
        thing.close()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_startup_registration_and_signal(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    assert line.call("status") == {"kind": "gsm", "ready": True, "reg": 1, "csq": 20, "calls": 0, "garbage": 0}
    cmds = net.commands("gsm1")
    assert cmds[:2] == ["AT", "ATE0"] and "AT+CLCC=1" in cmds and "AT+CLIP=1" in cmds
    assert net.modem_state("gsm1")["echo"] is False and net.modem_state("gsm1")["clcc"] is True
    net.set_registered("gsm1", 5)  # +CREG URC
    until(lambda: line.call("status")["reg"] == 5, 2, "roaming seen")
    net.set_signal("gsm1", 7)  # seen on the next AT+CSQ poll
    until(lambda: line.call("status")["csq"] == 7, 3, "signal 7 seen")
    net.set_registered("gsm1", 0)
    until(lambda: line.call("status")["reg"] == 0, 2, "registration loss seen")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_inbound_ring_with_caller_id_then_caller_abandons(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    call = net.call("gsm1", "+380501234567", hangup_after_s=2.0)
    ring = line.wait_event("ring", 3)
    assert ring["arg"] == "+380501234567"
    line.wait_event("hangup", 4)
    got = call.wait(2)
    assert got["answered"] is False and got["ended_by"] == "caller" and 1.8 < got["ring_s"] < 3
    assert line.names() == ["ring", "hangup"]
    assert line.call("status")["calls"] == 0
    (t,) = net.truth()
    assert (t["dir"], t["caller"], t["result"], t["attempts"], t["answered_by"]) == (
        "in", "+380501234567", "abandoned", [], None)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_answer_and_caller_ends_the_talk(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    call = net.call("gsm1", "0501112233", hangup_after_s=2.5)
    assert line.wait_event("ring", 3)["arg"] == "0501112233"
    assert line.call("answer") is True
    assert line.call("status")["calls"] == 1
    net.dtmf("gsm1", "12#")  # +DTMF (SIM800, after AT+DDET=1) or +RXDTMF (SIM7600)
    until(lambda: [e["arg"] for e in line.events if e["ev"] == "dtmf"] == ["1", "2", "#"], 2, "three digits")
    line.wait_event("hangup", 4)
    got = call.wait(2)
    assert got["answered"] is True and got["ended_by"] == "caller" and got["talk_s"] > 1
    assert line.call("status")["calls"] == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dial_outcomes(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    net.destination("+380441000001", answer_after_s=0.3, talk_s=1.0)
    net.destination("+380441000002", busy=True)
    net.destination("+380441000003", no_answer=True)
    net.destination("102", answer_after_s=0.3, talk_s=30)
    assert line.call("dial", "+380441000001", 3) == "answered"
    line.wait_event("hangup", 3)  # the far end hangs up during the talk
    line.call("hangup")  # released as the call machine does before the line's next call
    assert line.call("dial", "+380441000002", 3) == "busy"
    t0 = time.monotonic()
    assert line.call("dial", "+380441000003", 1.5) == "no_answer"
    assert time.monotonic() - t0 > 1.3, "no answer is decided by the ring timeout, not before"
    assert line.call("dial", "+380449999999", 3) == "failed"  # unknown number: unreachable
    assert line.call("dial", "12#3", 3) == "failed"  # refused by the driver
    assert line.call("dial", "102", 3) == "answered"
    n = len(line.events)
    line.call("hangup")
    time.sleep(0.3)
    assert line.names(n) == [], "our own release is no hangup event"
    legs = [(t["number"], t["result"], t["detail"], t["ended_by"]) for t in net.truth()]
    assert legs == [("+380441000001", "answered", "answered", "destination"),
                    ("+380441000002", "busy", "busy", "network"),
                    ("+380441000003", "no_answer", "cancelled", "gateway"),
                    ("+380449999999", "failed", "unreachable", "network"),
                    ("102", "answered", "answered", "gateway")]
    assert "ATD12#3;" not in net.commands("gsm1")
    assert line.call("status")["calls"] == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_probe_dial_hangs_up_as_soon_as_the_far_end_alerts(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    net.destination("+380441000005", answer_after_s=15, talk_s=1, alert_after_s=0.6)
    net.destination("+380441000002", busy=True)
    t0 = time.monotonic()
    assert line.call("dial", "+380441000005", 20, True) == "ringing"  # +CLCC stat 3 (AT+CLCC=1)
    assert 0.5 < time.monotonic() - t0 < 12, "hung up at alerting, not at the answer (15 s) or the ring timeout (20 s)"
    assert line.call("dial", "+380449999999", 3, True) == "unreachable"  # released before it ever rang
    assert line.call("dial", "+380441000002", 3, True) == "busy"
    legs = [(t["number"], t["answer"], t["detail"], t["ended_by"]) for t in net.truth()]
    assert legs == [("+380441000005", None, "cancelled", "gateway"),
                    ("+380449999999", None, "unreachable", "network"),
                    ("+380441000002", None, "busy", "network")]
    assert line.call("status")["calls"] == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_bridged_call_ends_when_the_far_end_hangs_up(world, dialect):
    net, lines = world(dialect, ports=("gsm1", "gsm2"))
    inbound, outbound = lines["gsm1"], lines["gsm2"]
    net.destination("+380629000102", answer_after_s=0.5, talk_s=1.5)
    call = net.call("gsm1", "+380501234567")
    assert inbound.wait_event("ring", 3)["arg"] == "+380501234567"
    assert outbound.call("dial", "+380629000102", 5) == "answered"
    assert inbound.call("answer") is True  # late answer, as the call machine does
    net.bridge("gsm1", "gsm2")  # what hw.bridge reports on the emulated board
    outbound.wait_event("hangup", 4)
    inbound.call("hangup")
    got = call.wait(2)
    assert got["answered"] is True and got["connected_to"] == "+380629000102" and got["ended_by"] == "gateway"
    (t,) = net.inbound()
    assert t["attempts"] == [dict(t["attempts"][0], number="+380629000102", port="gsm2", result="answered")]
    assert t["answered_by"] == "+380629000102" and 1.0 < t["bridge_s"] <= t["talk_s"]
    out = [x for x in net.truth() if x["dir"] == "out"][0]
    assert out["inbound"] == t["id"] and out["bridge"] == t["id"] and out["ended_by"] == "destination"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_clock_from_network_time(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    net.set_time(None)
    assert line.call("clock") is None  # the RTC default (04/01/01 or 80/01/06)
    net.set_time(1469080800, tz_quarters=12)  # 2016-07-21 06:00 UTC, local UTC+3
    got = line.call("clock")
    assert abs(got - 1469080800) <= 2
    net.set_time(1709249400, tz_quarters=-16)
    assert abs(line.call("clock") - 1709249400) <= 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_network_time_arrives_unasked_nitz(world, dialect):
    """The network sends its time (NITZ); the driver asked for it at start (SIM800 AT+CLTS=1: *PSUTTZ, SIM7600
    AT+CTZR=2: +CTZE) and reports it as a "time" event in UTC, with no AT+CCLK? asked."""
    net, lines = world(dialect)
    line = lines["gsm1"]
    assert ("AT+CLTS=1" if dialect == "sim800" else "AT+CTZR=2") in net.commands("gsm1")
    asked = net.commands("gsm1").count("AT+CCLK?")
    net.set_time(1469080800, tz_quarters=12)  # 2016-07-21 06:00 UTC, local UTC+3
    assert abs(line.wait_event("time", 3)["arg"] - 1469080800) <= 2
    net.set_time(1709249400, tz_quarters=-16)  # a change: sent again
    line.wait_event("time", 3, pred=lambda e: abs(e["arg"] - 1709249400) <= 2)
    assert net.commands("gsm1").count("AT+CCLK?") == asked
    net.set_time(None)  # no network time: nothing sent
    assert line.call("status")["garbage"] == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_frozen_modem_alarm_and_recovery_with_cfun(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    n = len(line.events)
    net.freeze("gsm1")
    alarm = line.wait_event("alarm", 6, after=n)
    assert alarm["arg"][0] == "modem_unresponsive"
    assert line.call("status")["ready"] is False
    line.wait_event("alarm", 8, after=n, pred=lambda e: e["arg"][0] == "modem_recovered")
    assert "AT+CFUN=1,1" in net.commands("gsm1")
    st = line.call("status")
    assert st["ready"] is True and st["reg"] == 1
    assert net.modem_state("gsm1")["clcc"] is True, "settings restored after the restart"


def test_frozen_modem_needs_the_power_reset_hook(world):
    net, lines = world("sim800", reset_hook=True)
    line = lines["gsm1"]
    n = len(line.events)
    net.freeze("gsm1", cfun_recovers=False)
    line.wait_event("alarm", 6, after=n)
    line.wait_event("reset_hook", 6, after=n)
    net.power_cycle("gsm1")  # the rig wires the hook to the modem's power
    line.wait_event("alarm", 8, after=n, pred=lambda e: e["arg"][0] == "modem_recovered")
    assert line.call("status")["ready"] is True


def test_frozen_modem_drops_the_call_in_progress(world):
    net, lines = world("sim800")
    line = lines["gsm1"]
    call = net.call("gsm1", "+380501234567")
    line.wait_event("ring", 3)
    assert line.call("answer") is True
    net.freeze("gsm1")
    line.wait_event("hangup", 6)  # the driver gives the call up when the modem goes down
    line.wait_event("alarm", 1)
    got = call.wait(10)  # the CFUN restart drops it in the network too
    assert got["answered"] is True and got["ended_by"] == "gateway"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_garbage_is_skipped(world, dialect):
    net, lines = world(dialect)
    line = lines["gsm1"]
    net.garbage("gsm1", b"\x00\xff\xfe\r\n")
    net.garbage("gsm1", b"\r\n+CLCC: 1,1\r\n")
    net.garbage("gsm1", b"\x88\x13")  # no line end: ends at the CR of the next URC
    net.call("gsm1", "+380671234567", hangup_after_s=1.5)
    assert line.wait_event("ring", 3)["arg"] == "+380671234567"
    line.wait_event("hangup", 4)
    assert line.call("status")["garbage"] == 3
    assert line.call("cmd", "AT") == []
    assert "alarm" not in line.names()


def _exchange(fd, text, until=b"\r\n", wait=2.0):
    """Send `text` (unless None), read until the bytes end with `until` and the line is quiet for 0.1 s."""
    if text is not None:
        os.write(fd, text.encode() + b"\r")
    end, out = time.monotonic() + wait, b""
    while time.monotonic() < end:
        if select.select([fd], [], [], 0.1)[0]:
            out += os.read(fd, 4096)
        elif out.endswith(until):
            break
    return out


@pytest.mark.parametrize("dialect", DIALECTS)
def test_network_speaks_at_like_the_modem(dialect):
    """The network alone (no firmware): framing, echo, dialect differences, busy lines, truth."""
    with GsmNetwork(boot_s=0.2) as net:
        fd = os.open(net.add_modem("gsm1", dialect), os.O_RDWR | os.O_NOCTTY)
        try:
            boot = _exchange(fd, None, b"Ready\r\n" if dialect == "sim800" else b"PB DONE\r\n")
            assert boot.startswith(b"\r\nRDY\r\n") and (b"Call Ready" in boot) == (dialect == "sim800")
            assert _exchange(fd, "AT") == b"AT\r\r\nOK\r\n"  # echo is on after power-up
            assert _exchange(fd, "AT+NOPE") == b"AT+NOPE\r\r\nERROR\r\n"
            assert _exchange(fd, "ATE0") == b"ATE0\r\r\nOK\r\n"
            assert _exchange(fd, "AT+CSQ") == b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n"
            assert _exchange(fd, "AT+DDET=1") == (b"\r\nOK\r\n" if dialect == "sim800" else b"\r\nERROR\r\n")
            assert _exchange(fd, "AT+CLCC=1") == b"\r\nOK\r\n"
            net.destination("+3801", answer_after_s=0.3, talk_s=0.3, lines=1)
            out = _exchange(fd, "ATD+3801;", b"NO CARRIER\r\n")
            assert out.startswith(b"\r\nOK\r\n") and out.endswith(b"NO CARRIER\r\n")
            assert (b"VOICE CALL: BEGIN" in out) == (dialect == "sim7600")
            assert (b',"",,0\r\n' in out) == (dialect == "sim7600")  # +CLCC trailing fields
            call = net.call("gsm1", "+3802")
            assert b"+CLCC: 1,1,4,0,0,\"+3802\"" in _exchange(fd, None)
            assert b"+CLCC: 1,1,0" in _exchange(fd, "ATA")
            out = _exchange(fd, "ATD+3801;")  # one call per modem
            assert out == b"\r\nERROR\r\n"
            call.hangup()
            assert b"NO CARRIER" in _exchange(fd, None)
            assert call.wait(1)["ended_by"] == "caller"
            net.set_registered("gsm1", 3)
            assert _exchange(fd, "ATD+3801;") == b"\r\nNO CARRIER\r\n"
            (out_leg, in_leg) = net.truth()
            assert (out_leg["dir"], out_leg["result"], out_leg["ended_by"]) == ("out", "answered", "destination")
            assert (in_leg["dir"], in_leg["result"], in_leg["attempts"]) == ("in", "answered", [])
        finally:
            os.close(fd)
