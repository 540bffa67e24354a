"""Rollouts end to end: the controller service (real Mosquitto; SQLite and PostgreSQL) and emulated
boards running the real firmware. Applied; rejected when a gateway holds the wrong key; re-published after a
gateway was offline; and the controller's preview equals what the board did with a call."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from controller import reference
from controller.brokers import Mosquitto, free_port
from controller.models import Gateway, Holiday, Record
from controller.rollouts import advance_rollouts, start_rollout
from controller.service import ControllerService
from controller.settings import Settings
from emulator.board import EmulatedRig
from protocols import routing
from tests.controller.databases import KINDS, scratch_url

pytestmark = pytest.mark.slow
PROFILE, PORTS, OUT = "esp32-wrover-4gsm", {"gsm1": "102", "gsm3": "505"}, ["gsm2"]
CITY_GWS = ["gw-mariupol-1", "gw-toretsk-1"]


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(what() if callable(what) else what)


@pytest.fixture(params=KINDS)
def database_url(request, tmp_path):
    with scratch_url(request.param, tmp_path, request.node.name) as url:
        yield url


def start_service(url, broker) -> ControllerService:
    return ControllerService(Settings(database_url=url, broker=broker.url, listen_port=free_port())).start()


def stop_service(service) -> None:
    service.stop()
    service.db.engine.dispose()  # before the PostgreSQL schema is dropped


@pytest.fixture
def fleet(tmp_path, database_url):
    with Mosquitto(start_timeout=30) as broker:  # it is started again mid-test, maybe on a loaded machine
        service = start_service(database_url, broker)
        with service.db.session() as s:
            reference.seed(s, profile=PROFILE, ports=PORTS, out_ports=OUT)
            keys = {g.id: g.key_hex for g in s.scalars(select(Gateway))}
        keys["gw-toretsk-1"] = "00" * 32  # flashed with a wrong key: must reject
        rigs = {}
        try:
            for gw in CITY_GWS:
                rigs[gw] = EmulatedRig(gw, keys[gw], broker.url, profile=PROFILE, workdir=tmp_path / gw)
                rigs[gw].network.set_time(1469440800)  # 2016-07-25 13:00 Kyiv, after Toretsk's switch-over
                for c in reference.CENTRES.values():
                    rigs[gw].network.destination(c["number"], answer_after_s=0.3, talk_s=1)
                rigs[gw].power_on()
            yield service, rigs, broker
        finally:
            for rig in rigs.values():
                rig.close()
            stop_service(service)


def gateway(service, gw_id):
    with service.db.session() as s:
        return s.get(Gateway, gw_id)


def test_rollout_applied_rejected_and_republished(fleet):
    service, rigs, broker = fleet
    wait(lambda: all(gateway(service, g).online for g in CITY_GWS), 40, "boards online")
    with service.db.session() as s:
        rollout = start_rollout(s, service.bridge, CITY_GWS, canary=["gw-mariupol-1"])
        rid = rollout.id
    wait(lambda: gateway(service, "gw-mariupol-1").applied_version == 1, 30, "canary applied")
    wait(lambda: gateway(service, "gw-toretsk-1").last_reject, 40, "toretsk rejects (wrong key)")
    assert gateway(service, "gw-toretsk-1").last_reject.startswith("sig:")
    assert gateway(service, "gw-toretsk-1").applied_version is None

    # the board's call and the controller's preview agree
    lived = rigs["gw-mariupol-1"].network.call("gsm1", "+380671112233").wait(30)
    rec = wait(lambda: _record(service, "gw-mariupol-1", "+380671112233"), 20, "record")
    with service.db.session() as s:
        from controller.compiler import latest_table

        table = routing.load(latest_table(s, "gw-mariupol-1").body)
    d = routing.decide(table, "gsm1", "+380671112233", rec.at)
    assert lived["answered"] and (rec.route, rec.target) == (d.route, d.targets[0])

    # a new version while Mariupol is offline: it is re-published when the board comes back
    rigs["gw-mariupol-1"].power_off()
    wait(lambda: not gateway(service, "gw-mariupol-1").online, 60, "last will")
    with service.db.session() as s:
        s.add(Holiday(city_id=None, date="2016-12-25"))
        s.flush()
        start_rollout(s, service.bridge, ["gw-mariupol-1"], canary=[])
    broker.stop()  # the retained table is lost with a non-persistent broker: only re-publishing helps
    broker.start()
    wait(lambda: service.bridge.connected.is_set(), 60, "controller reconnected")
    rigs["gw-mariupol-1"].power_on()
    wait(lambda: gateway(service, "gw-mariupol-1").applied_version == 2, 60, "re-published and applied")
    with service.db.session() as s:
        advance_rollouts(s, service.bridge)
        first = s.get(type(rollout), rid)
        assert first.status == "halted" or any(t.status == "rejected" for t in first.targets)


def _record(service, gw, caller):
    with service.db.session() as s:
        return s.scalars(select(Record).where(Record.gateway_id == gw, Record.caller == caller)).first()


def test_controller_counts_equal_truth_after_a_broker_restart_mid_traffic(tmp_path, database_url):
    gw_id = "gw-kramatorsk-1"
    with Mosquitto(start_timeout=30) as broker:  # it is started again mid-test, maybe on a loaded machine
        service = start_service(database_url, broker)
        with service.db.session() as s:
            reference.seed(s, profile=PROFILE, ports=PORTS, out_ports=OUT)
            key = s.get(Gateway, gw_id).key_hex
        rig = EmulatedRig(gw_id, key, broker.url, profile=PROFILE, workdir=tmp_path / gw_id)
        try:
            rig.network.set_time(1469440800)
            for c in reference.CENTRES.values():
                rig.network.destination(c["number"], answer_after_s=0.2, talk_s=0.5)
            rig.power_on()
            wait(lambda: gateway(service, gw_id).online, 40, "board online")
            with service.db.session() as s:
                start_rollout(s, service.bridge, [gw_id])
            wait(lambda: gateway(service, gw_id).applied_version == 1, 30, "table applied")
            callers = [f"+38067{i:07d}" for i in range(10)]
            for i, caller in enumerate(callers):
                if i == 4:
                    broker.stop()  # mid-traffic: the board keeps routing and keeps its records
                    down = rig.console_mark()
                if i == 7:
                    broker.start()
                rig.network.call("gsm1" if i % 3 else "gsm3", caller,
                                 hangup_after_s=0.1 if i == 5 else None).wait(60)
            # each side reconnects on its own backoff (the board's grows to 60 s): the board is back once it
            # says so, and a command sent before it subscribed again is lost (commands are not retained)
            wait(lambda: service.bridge.connected.is_set(), 120, "controller reconnected")
            rig.wait_console(r"link: connected", timeout=120, after=down)
            result = command_until_answered(service, gw_id, "counters", 120)
            seq = result["result"]["seq"]
            counters = wait(lambda: _by_seq(service, gw_id, seq), 120, "the counters record stored")
            truth = rig.network.inbound()
            stored = wait(lambda: (lambda r: len(r) == len(truth) and r)(_calls(service, gw_id)), 120,
                          lambda: _missing(service, rig, gw_id, truth))
        finally:
            rig.close()
            stop_service(service)
    assert sorted(r.caller for r in stored) == sorted(t["caller"] for t in truth)
    assert counters["calls"] == len(truth)
    answered = sum(t["result"] == "answered" for t in truth)
    assert sum(r.outcome == "answered" for r in stored) == answered
    assert sum(c.get("answered", 0) for c in counters["routes"].values()) == answered


def _missing(service, rig, gw_id, truth) -> str:
    """Why not every call record is stored: what is, what the board and the bridge say."""
    stored = {r.seq: r.caller for r in _calls(service, gw_id)}
    missing = sorted({t["caller"] for t in truth} - set(stored.values()))
    state = gateway(service, gw_id).state
    board = {k: state.get(k) for k in ("last_seq", "outbox", "calls", "store_id", "uptime_s")}
    return (f"every call record stored: {len(stored)} of {len(truth)} (seqs {sorted(stored)}); missing callers "
            f"{missing}; the board's last state {board}; bridge stats {service.bridge.stats}, refused "
            f"{service.bridge.refused}, waiting {service.bridge.waiting}, connected {service.bridge.connected.is_set()}"
            f"\nthe board's console:\n" + "\n".join(rig.console().splitlines()[-60:]))


def command_until_answered(service, gw, op, timeout):
    """Send `op` again each time no answer came (the one before may have reached no subscriber)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return service.bridge.command(gw, op, timeout=15)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def _by_seq(service, gw, seq):
    with service.db.session() as s:
        rec = s.scalars(select(Record).where(Record.gateway_id == gw, Record.seq == seq)).first()
        return rec.data if rec else None


def _calls(service, gw):
    with service.db.session() as s:
        return list(s.scalars(select(Record).where(Record.gateway_id == gw, Record.kind == "call")))
