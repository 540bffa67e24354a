"""Fixtures of the fault suite: `deployment(kind, **options)` builds a setup (tests/faults/setups.py) and
closes it after the test; `calls` places calls with callers of their own into the board's 102 line."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.controller.databases import scratch_url
from tests.faults import figures
from tests.faults.setups import LINE, Embedded, Production
from tests.faults.uplink import Uplink

SETUPS = ["embedded", "production"]


@pytest.fixture
def deployment(tmp_path, request):
    """`deployment(kind, outbox_records=None, uplink=False, db_url=None)` -> Setup (`setup.uplink` when asked)."""
    made, contexts = [], []

    def make(kind: str, outbox_records: int | None = None, uplink: bool = False, db_url: str | None = None):
        holder = {}

        def via(port):
            holder["uplink"] = Uplink(port)
            return holder["uplink"].url
        proxy = via if uplink else None
        try:
            if kind == "embedded":
                setup = Embedded(tmp_path, outbox_records, proxy)
            else:
                if db_url is None:
                    ctx = scratch_url("postgresql", tmp_path, request.node.name)
                    db_url = ctx.__enter__()
                    contexts.append(ctx)
                setup = Production(tmp_path, db_url, outbox_records, proxy)
        except BaseException:
            if "uplink" in holder:
                holder["uplink"].close()
            raise
        setup.uplink = holder.get("uplink")
        made.append(setup)
        return setup

    started = time.monotonic()
    try:
        yield make
    finally:
        for setup in made:
            try:
                setup.close()
            finally:
                if setup.uplink is not None:
                    setup.uplink.close()
        for ctx in contexts:
            ctx.__exit__(None, None, None)
        request.node.fault_seconds = time.monotonic() - started


_callers = itertools.count(1)


class Calls:
    """Inbound calls into the board, each from a caller of its own (the figures tell records apart by caller)."""

    def __init__(self, rig):
        self.rig = rig

    def place(self, n: int = 1, prefix: str = "+38067") -> list:
        return [self.rig.network.call(LINE, f"{prefix}{next(_callers):07d}") for _ in range(n)]

    def make(self, n: int, prefix: str = "+38067", timeout: float = 30) -> list[dict]:
        """n calls one after the other, each lived to its end."""
        return [c.wait(timeout) for c in (self.place(1, prefix)[0] for _ in range(n))]


def show(setup) -> None:
    """What the network lived and the controller stored, and the board's console: for a failing scenario."""
    from sqlalchemy import select

    from controller.models import Record

    for t in setup.rig.network.inbound():
        print("truth", t["caller"], t["result"], t["start"], t["end"])
    with setup.db.session() as s:
        for r in s.execute(select(Record.store_id, Record.seq, Record.kind, Record.caller).order_by(Record.id)):
            print("stored", *r)
    print(setup.rig.console()[-8000:])


def finish(scenario: str, setup, started: float, exact: bool = True, timeout: float = 120) -> dict:
    """Wait for the records to settle, print and keep the figures; controller totals = ground truth."""
    try:
        f = figures.wait_settled(setup.db, setup.rig, "gw-mariupol-1", exact, timeout)
    except AssertionError:
        show(setup)
        raise
    figures.report(scenario, setup.name, f, time.monotonic() - started)
    figures.assert_exact(f)
    return f
