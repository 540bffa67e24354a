"""One of two controller processes killed (-9, with its ingest worker) on the production setup (Mosquitto,
PostgreSQL, `citygate serve` a and b sharing ingest): during ingest, the other process stores what the dead
one took and never committed (the board sends again from its last ack); during a rollout, the leader dies
right after the rollout began and the other process takes the lock and the rollout's next stage over."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import create_engine, select

from controller.models import Gateway, Holiday, Rollout
from tests.conditions import until
from tests.controller.test_multi_process import leader
from tests.faults.conftest import Calls, finish
from tests.faults.setups import GW, gateway

pytestmark = pytest.mark.slow


def test_a_controller_killed_during_ingest(deployment):
    setup = deployment("production")
    started = time.monotonic()
    calls = Calls(setup.rig)
    calls.make(3)
    pending = calls.place(1)  # its record is being sent when the process goes
    victim = setup.controllers["a"]
    committed = victim.metric("ingest_records_total")
    setup.kill("a")
    pending[0].wait(30)
    calls.make(5)
    f = finish("controller_kill_ingest", setup, started)
    assert setup.controllers["b"].metric("ingest_records_total") > 0, "the survivor stored records"
    print(f"process a had committed {committed:.0f} records before it was killed")
    assert f["stored"] == f["expected"]


def test_the_leader_killed_during_a_rollout(deployment):
    setup = deployment("production")
    started = time.monotonic()
    engine = create_engine(setup.db_url)
    try:
        holder = until(lambda: leader(engine), 20, "a leader")
        name = holder.rsplit("-", 1)[1]
        other = "b" if name == "a" else "a"
        with setup.db.session() as s:  # a change that gives every gateway a new table
            s.add(Holiday(city_id=None, date="2016-12-25"))
            rest = [g for g in s.scalars(select(Gateway.id)) if g != GW]
        before = gateway(setup.db).applied_version
        calls = Calls(setup.rig)
        calls.make(2)
        api = setup.controllers[other]  # the rollout asked of the survivor's API; its duties run on the leader
        r = httpx.post(f"http://127.0.0.1:{api.port}/api/v1/rollouts", json={"gateways": None, "canary": [GW]},
                       headers={"Authorization": f"Bearer {setup.token}"}, timeout=30)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        pending = calls.place(1)
        setup.kill(name)  # the leader dies with the rollout in its canary stage
        until(lambda: leader(engine) == f"citygate-leader-{other}", 20, "the survivor leading")
        pending[0].wait(30)
        until(lambda: (gateway(setup.db).applied_version or 0) > before, 60, "the canary's new table applied")
        calls.make(3)

        def moved_on():
            with setup.db.session() as s:
                ro = s.get(Rollout, rid)
                desired = {g.id: g.desired_version for g in s.scalars(select(Gateway).where(Gateway.id.in_(rest)))}
                targets = {t.gateway_id: t.version for t in ro.targets}
                return ro.status in ("rest", "done") and all(desired[g] == targets[g] for g in rest) and ro.status
        status = until(moved_on, 30, "the new leader publishing the rollout's rest stage")
        print(f"rollout {rid}: {status}; {len(rest)} gateways of the rest stage published by {other}")
    finally:
        engine.dispose()
    finish("controller_kill_rollout", setup, started)
