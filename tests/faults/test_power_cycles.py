"""A board power-cycled again and again while citizens call: cut in the middle of a call (its modems lose
power with it, so that call is cut and no one can record it: the figures show it as `cut`) and just after a
call's record reached the controller (on flash, its ack maybe not back: the board sends it again after the
boot and the controller stores it once). Every call the board lived to its end is stored once.

A cut as the call ends (the moment the network sees the caller's leg hung up) keeps that call's record:
gw/calls.py appends it before releasing the legs (ATH and its OK), so only the board's reading of the
end and the append itself stand between the end and the record on flash."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from controller.models import Record
from tests.conditions import until
from tests.faults.conftest import SETUPS, Calls, finish
from tests.faults.figures import assert_exact, report, tally
from tests.faults.setups import GW, gateway, ready

pytestmark = pytest.mark.slow
CYCLES = 4


def stored(setup, caller: str) -> bool:
    with setup.db.session() as s:
        return s.scalar(select(func.count()).select_from(Record).where(Record.caller == caller)) > 0


def boot(setup) -> int:
    return (gateway(setup.db).state or {}).get("boot", 0)


@pytest.mark.parametrize("kind", SETUPS)
def test_a_board_power_cycled_repeatedly_during_calls(deployment, kind):
    setup = deployment(kind)
    started = time.monotonic()
    rig, calls = setup.rig, Calls(setup.rig)
    calls.make(2)
    for i in range(CYCLES):
        before = boot(setup)
        call = calls.place(1)[0]
        if i % 2 == 0:  # in the middle of the call: once the centre answered and they talk
            until(lambda: any(t["result"] == "active" for t in rig.network.inbound()), 20, "a call in progress")
        else:  # just after its record reached the controller: on the board's flash, its ack maybe not back yet
            caller = call.wait(30)["caller"]
            until(lambda c=caller: stored(setup, c), 30, "the call's record stored", every=0.02)
        rig.power_cycle()
        call.wait(30)
        until(lambda b=before: boot(setup) > b and ready(setup.db), 60, f"the board back after cut {i + 1}",
              every=0.2)
        calls.make(1)
    f = finish("power_cycles", setup, started)
    assert f["cut"] >= 1, "a cut in the middle of a call cuts that call"
    assert rig.boots == CYCLES + 1


def test_a_cut_as_a_call_ends_keeps_its_record(deployment):
    setup = deployment("embedded")
    started = time.monotonic()
    rig, calls = setup.rig, Calls(setup.rig)
    for i in range(3):
        before = boot(setup)
        calls.make(1)  # ended for the network: the board releases its legs, then records it
        rig.power_cycle()
        until(lambda b=before: boot(setup) > b and ready(setup.db), 60, f"the board back after cut {i + 1}",
              every=0.2)
    last = calls.make(1)[0]["caller"]  # stored only after every earlier record (the ack is cumulative)
    until(lambda: stored(setup, last), 60, "the last call's record stored", every=0.1)
    f = tally(setup.db, rig, GW)
    report("cut_as_a_call_ends", setup.name, f, time.monotonic() - started)
    assert_exact(f)
