"""One board's uplink cut (a relay in front of the broker closes its connection and refuses new ones; the
controller and the broker stay up) while an hour of network time passes and citizens keep calling, more
calls than its outbox holds: the board drops its oldest unacked calls and says so in a `dropped` record;
once the link is back the controller has every call that was kept once and counts every one dropped, and
the board's cumulative counters equal the network's ground truth.

The outbox is shrunk for the test to 16 records (EmulatedRig(outbox_records=16), board.json's
`store.max_records`; 2,000 on a board): filling 2,000 emulated calls would take half an hour. The hour is
the network's time, advanced in steps while the link is down (NITZ sets the board's clock; its records are
stamped across the hour). The board's own hourly counters record runs on its monotonic clock and is not
waited for: the test asks for the counters with the `counters` command instead."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from controller.models import Record
from tests.faults.conftest import SETUPS, Calls, finish
from tests.faults.figures import tally, wait_settled
from tests.faults.setups import GW

pytestmark = pytest.mark.slow
OUTBOX = 16
DURING_CUT = 2 * OUTBOX + 4


@pytest.mark.parametrize("kind", SETUPS)
def test_uplink_cut_for_an_hour_with_the_outbox_overflowing(deployment, kind):
    setup = deployment(kind, outbox_records=OUTBOX, uplink=True)
    started = time.monotonic()
    calls, net = Calls(setup.rig), setup.rig.network
    calls.make(2)
    wait_settled(setup.db, setup.rig, GW)
    setup.uplink.cut()
    t0 = net.now()
    for i in range(DURING_CUT):
        net.set_time(t0 + 3600 * (i + 1) / DURING_CUT)  # an hour of network time over the cut
        calls.make(1)
    assert tally(setup.db, setup.rig, GW)["stored"] == 2, "nothing passed the cut uplink"
    setup.uplink.restore()
    mark = setup.rig.console_mark()
    # the board retries its link with a backoff that doubles up to 60 s: it may come back a minute after
    f = finish("uplink_cut_outbox_overflow", setup, started, timeout=180)
    print("after restore:", [ln for ln in setup.rig.console().splitlines()[mark:] if "link" in ln][:12])
    assert f["counted"] > 0, f"the outbox of {OUTBOX} overflowed with {DURING_CUT} calls: drops must be counted"
    assert f["stored"] + f["counted"] == f["expected"] == f["calls_made"], f
    counters = setup.counters()
    assert counters["calls"] == f["calls_made"] and counters["dropped"] == f["counted"], (counters, f)
    with setup.db.session() as s:
        first, last = s.execute(select(func.min(Record.at), func.max(Record.at))
                                .where(Record.gateway_id == GW, Record.kind == "call")).one()
    assert last - first >= 3000, "the stored calls are stamped across the hour of network time"
