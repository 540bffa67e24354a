"""The network's clock jumps while citizens call (NITZ and AT+CCLK? follow it; the board's clock follows
them): a day forward, 23 hours back, then back to 2016, behind the running table's `issued_at`, where
the board's clock keeps running from its floor instead (gw/clock.py). Each call is stored once, stamped
with the time the board had, and the controller's hourly aggregates count every call in its own hour."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from controller.models import Record
from tests.faults.conftest import SETUPS, Calls, finish
from tests.faults.setups import GW

pytestmark = pytest.mark.slow
DAY, HOUR = 86400, 3600
PER_STEP = 2


@pytest.mark.parametrize("kind", SETUPS)
def test_clock_jumps_forward_and_back(deployment, kind):
    setup = deployment(kind)
    started = time.monotonic()
    calls, net = Calls(setup.rig), setup.rig.network
    t0 = net.now()
    steps = [("now", t0), ("a day forward", t0 + DAY), ("23 h back", t0 + HOUR), ("2016", 1469440800.0)]
    callers = {}
    for name, unix in steps:
        net.set_time(unix)
        callers[name] = [c["caller"] for c in calls.make(PER_STEP)]
    finish("clock_jumps", setup, started)
    with setup.db.session() as s:
        at = {c: t for c, t in s.execute(select(Record.caller, Record.at).where(Record.gateway_id == GW,
                                                                               Record.kind == "call"))}
    slack = time.monotonic() - started + 60  # real time passing while the test runs
    for name, unix in steps[:3]:
        for c in callers[name]:
            assert unix - 5 <= at[c] <= unix + slack, (name, c, at[c], unix)
    floor = max(at[c] for c in callers["23 h back"])
    for c in callers["2016"]:  # behind the floor: the clock keeps running from where it was
        assert floor <= at[c] <= floor + slack, (c, at[c], floor)
