"""The database goes away while citizens call. Production: a private PostgreSQL cluster of this test
(tests/faults/pgcluster.py; never the machine's server) stopped as by a crash (`pg_ctl -m immediate`),
calls made while it is down, then started again: both controller processes hold their batches, the board
keeps what is not acked, and everything is stored once when it is back. Embedded (SQLite, no server to
restart): the controller's ingest worker, the process that writes to the database, is killed -9."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import create_engine, text

from tests.conditions import until
from tests.faults import pgcluster
from tests.faults.conftest import Calls, finish

pytestmark = pytest.mark.slow


@pytest.fixture
def private_pg():
    reason = pgcluster.skip_reason()
    if reason:
        pytest.skip(reason)
    with pgcluster.PrivateCluster() as pg:
        yield pg


def test_postgresql_restarted_during_traffic(deployment, private_pg):
    pg = private_pg
    setup = deployment("production", db_url=pg.url)
    started = time.monotonic()
    calls = Calls(setup.rig)
    calls.make(3)
    pending = calls.place(1)
    pg.stop("immediate")  # as a crash: no checkpoint, every connection cut
    pending[0].wait(30)
    calls.make(3)  # stored nowhere yet: the controllers hold them, the board keeps them unacked
    assert all(c.proc.poll() is None for c in setup.controllers.values()), "a controller died with its database"
    pg.start()
    setup.db.engine.dispose()  # the test's own connections died with the server
    calls.make(3)
    pg.restart("immediate")  # a second, short one
    setup.db.engine.dispose()
    calls.make(2)
    finish("database_restart", setup, started)
    probe = create_engine(pg.url)
    try:
        with probe.connect() as conn:  # the leader took its lock again on the restarted server
            until(lambda: conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                            "AND granted")).scalar(), 20, "a leader's advisory lock")
    finally:
        probe.dispose()


def test_ingest_worker_killed_during_traffic_embedded(deployment):
    setup = deployment("embedded")
    started = time.monotonic()
    calls = Calls(setup.rig)
    calls.make(3)
    worker = setup.service.bridge.worker
    for _ in range(2):
        old = worker.pid
        pending = calls.place(1)
        os.kill(old, signal.SIGKILL)
        pending[0].wait(30)
        until(lambda o=old: worker.proc.poll() is None and worker.pid != o, 30, "the ingest worker replaced")
        calls.make(3)
    finish("ingest_worker_kill", setup, started)
