"""Subscriber lines: modems outside the board with SIM numbers call the board's ports by number and ring when
the board dials theirs (what a bench's caller and centre modems do), driven with AT commands over their ptys."""

from __future__ import annotations

import pytest

from emulator.network import GsmNetwork
from hil_tests.rig.bench_network import BenchNetwork, CentreLine
from hil_tests.rig.drivers.at_modem import AtModem
from tests.conditions import until

BOARD_GSM1, BOARD_GSM3, CALLER, CENTRE = "+380671110001", "+380671110003", "+380501230001", "+380629000001"


@pytest.fixture
def net():
    with GsmNetwork(boot_s=0.2) as network:
        yield network


@pytest.fixture
def modems():
    opened = []

    def open_(name, path, **kw):
        m = AtModem(name, path, **kw)
        opened.append(m)
        return m

    yield open_
    for m in opened:
        m.close()


def test_a_caller_dials_a_board_port_by_its_number_and_presses_keys(net, modems):
    board = modems("gsm1", net.add_modem("gsm1"))  # stands in for the firmware: answers at once
    net.set_number("gsm1", BOARD_GSM1)
    caller = modems("caller-1", net.add_subscriber("caller-1", CALLER))
    urcs = []
    board.on_urc = urcs.append
    board.open()
    board.command("AT+DDET=1")
    caller.open()
    bench = BenchNetwork("t", {"gsm1": BOARD_GSM1}, {"caller-1": (caller, CALLER)}, {})
    call = bench.call("gsm1", CALLER, keys="42")
    until(lambda: "RING" in urcs, what="the board's port to ring")
    assert any(f'+CLIP: "{CALLER}"' in line for _, _, line in board.log), "the caller id is the caller's SIM"
    board.answer()
    until(lambda: [line for _, _, line in board.log if line.startswith("+DTMF")] == ["+DTMF: 4", "+DTMF: 2"],
          what="the caller's keys at the board")
    board.hang_up()
    lived = call.wait(20)
    assert lived["answered"] and lived["ended_by"] == "gateway"
    legs = net.truth()  # the board's truth: its own inbound leg only, from the caller's number
    assert [(t["dir"], t["port"], t["caller"], t["result"], t["ended_by"]) for t in legs] == \
        [("in", "gsm1", CALLER, "answered", "gateway")]


@pytest.mark.parametrize("behaviour,result", [({"answer_after_s": 0.3, "talk_s": 0.8}, "answered"),
                                              ({"busy": True}, "busy")])
def test_the_board_dials_a_centre_modem_that_answers_or_refuses(net, modems, behaviour, result):
    board = modems("gsm3", net.add_modem("gsm3")).open()
    net.set_number("gsm3", BOARD_GSM3)
    centre_modem = modems("centre-a", net.add_subscriber("centre-a", CENTRE))
    centre = CentreLine(centre_modem, CENTRE, {BOARD_GSM3: "gsm3"})
    centre.behaviour.update(behaviour)
    centre_modem.open()
    board.dial(CENTRE)
    leg = until(lambda: centre.legs and centre.legs[0]["end"] and centre.legs[0], what="the centre's call to end")
    out = until(lambda: [t for t in net.truth() if t["end"]], what="the board's leg to end")
    assert (leg["result"], leg["port"]) == (result, "gsm3")
    assert [(t["dir"], t["port"], t["number"], t["result"]) for t in out] == [("out", "gsm3", CENTRE, result)]
    if result == "answered":
        assert out[0]["ended_by"] == "destination" and 0.6 <= out[0]["talk_s"] <= 3
    ends = {"answered": "NO CARRIER", "busy": "BUSY"}[result]
    until(lambda: any(line == ends for _, way, line in board.log if way == "<"), what=f"{ends} at the board")


def test_a_caller_hanging_up_while_it_rings_is_an_abandoned_call_at_the_board(net, modems):
    board = modems("gsm1", net.add_modem("gsm1")).open()  # never answers
    net.set_number("gsm1", BOARD_GSM1)
    caller = modems("caller-1", net.add_subscriber("caller-1", CALLER)).open()
    bench = BenchNetwork("t", {"gsm1": BOARD_GSM1}, {"caller-1": (caller, CALLER)}, {})
    lived = bench.call("gsm1", CALLER, hangup_after_s=1.0).wait(20)
    assert (lived["answered"], lived["result"]) == (False, "abandoned")
    t = until(lambda: [t for t in net.truth() if t["end"]], what="the board's leg to end")[0]
    assert (t["caller"], t["result"], t["ended_by"]) == (CALLER, "abandoned", "caller")
    until(lambda: any(line == "NO CARRIER" for _, way, line in board.log if way == "<"), what="NO CARRIER")
