"""The two deployments the fault suite runs on, each with one emulated board of the reference deployment.

- `Embedded`: one controller process (ControllerService in this process) with its embedded amqtt broker
  and SQLite: what `citygate serve` runs on one machine.
- `Production`: two `citygate serve` processes (role all, instances a and b) sharing ingest through
  `$share/citygate/...` on one Mosquitto (persistence on, as deployed), one PostgreSQL (a scratch schema
  of the shared server, or a private cluster `pgcluster.PrivateCluster` the test may restart).

Both seed the reference configuration, start the board (`esp32-wrover-4gsm`, its 102 line on gsm1) and
roll its table out before a scenario begins. Every process started here is stopped by `close()`.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from controller import reference
from controller.auth import create_token, create_user
from controller.brokers import Mosquitto, free_port
from controller.db import Database
from controller.models import Gateway, Record
from controller.service import ControllerService
from controller.settings import Settings
from emulator.board import EmulatedRig
from tests.conditions import until
from tests.controller.test_multi_process import Controller

GW = "gw-mariupol-1"
LINE = "gsm1"  # the 102 line (reference.PORTS)
POLICE = reference.CENTRES["mariupol-102"]["number"]
SECRET = secrets.token_hex(32)


def gateway(db: Database, gw: str = GW) -> Gateway:
    with db.session() as s:
        g = s.get(Gateway, gw)
        s.expunge(g)
        return g


def ready(db: Database, gw: str = GW) -> bool:
    g = gateway(db, gw)
    ports = (g.state or {}).get("ports") or {}
    return bool(g.online and ports and all(p.get("ready") for p in ports.values()))


class Setup:
    """What a scenario uses: `db` (for counting), `rig` (the board), `broker_url`, `restart_broker()`,
    `rollout()`; the production setup adds `controllers` and `kill(name)`."""

    name = "?"
    db: Database
    rig: EmulatedRig | None = None

    def start_board(self, tmp: Path, broker_url: str, password: str | None = None, outbox_records: int | None = None,
                    via: str | None = None) -> EmulatedRig:
        """The reference board, its centres answering at once; online with its table applied."""
        key = gateway(self.db).key_hex
        self.rig = EmulatedRig(GW, key, via or broker_url, profile=reference.PROFILE, workdir=tmp / GW,
                               password=password, outbox_records=outbox_records)
        # now: a network time behind the table's issued_at would only be the clock's floor (gw/clock.py)
        self.rig.network.set_time(time.time())
        for c in reference.CENTRES.values():
            self.rig.network.destination(c["number"], answer_after_s=0.2, talk_s=0.4)
        self.rig.power_on()
        until(lambda: ready(self.db), 90, "the board online with its lines ready", every=0.2)
        self.rollout()
        until(lambda: gateway(self.db).applied_version, 60, "the board's table applied", every=0.2)
        return self.rig

    def rollout(self) -> None:
        raise NotImplementedError

    def command(self, op: str) -> dict:
        """A command to the board through the controller, its answer."""
        raise NotImplementedError

    def counters(self) -> dict:
        """The board's cumulative counters as its `counters` record, asked for now and stored by the controller."""
        answer = self.command("counters")
        assert answer.get("ok"), answer
        seq = answer["result"]["seq"]

        def stored():
            with self.db.session() as s:
                return s.scalar(select(Record.data).where(Record.gateway_id == GW, Record.kind == "counters",
                                                          Record.seq == seq))
        return until(stored, 60, "the counters record stored", every=0.2)

    def restart_broker(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.rig is not None:
            self.rig.close()


class Embedded(Setup):
    name = "embedded"

    def __init__(self, tmp: Path, outbox_records: int | None = None, via_proxy=None):
        settings = Settings(database_url=f"sqlite:///{tmp / 'citygate.db'}", broker="embedded",
                            broker_port=free_port(), listen_port=free_port(), secret_key=SECRET)
        self.service = ControllerService(settings).start()
        self.db = self.service.db
        from controller.api.routes.gateways import store_password

        with self.db.session() as s:
            reference.seed(s)
            password = store_password(SECRET, s.get(Gateway, GW))
        self.broker_url = self.service.broker_url
        via = via_proxy(self.service.broker.port) if via_proxy else None
        self.start_board(tmp, self.broker_url, password, outbox_records, via)

    def rollout(self) -> None:
        from controller.rollouts import start_rollout

        with self.db.session() as s:
            start_rollout(s, self.service.bridge, [GW])

    def command(self, op: str) -> dict:
        return self.service.bridge.command(GW, op, timeout=30)

    def restart_broker(self) -> None:
        """The embedded broker stopped (its sessions and connections gone) and started again on its port."""
        self.service.broker.stop()
        self.service.broker.start()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.service.stop()
            self.db.engine.dispose()


class Production(Setup):
    name = "production"

    def __init__(self, tmp: Path, db_url: str, outbox_records: int | None = None, via_proxy=None):
        self.tmp, self.db_url = tmp, db_url
        self.broker = Mosquitto(persistence=True).start()
        self.controllers: dict[str, Controller] = {}
        self.db = Database(db_url)
        try:
            for name in ("a", "b"):
                self.controllers[name] = Controller(tmp, name, "all", db_url, self.broker.url)
            until(lambda: all(c.up() for c in self.controllers.values()), 90, "both controllers up", every=0.2)
            with self.db.session() as s:
                reference.seed(s)
                self.token = create_token(s, create_user(s, "faults", "admin"), "faults")
            self.broker_url = self.broker.url
            via = via_proxy(self.broker.port) if via_proxy else None
            self.start_board(tmp, self.broker_url, None, outbox_records, via)
        except BaseException:
            self.close()
            raise

    def live(self) -> Controller:
        return next(c for c in self.controllers.values() if c.proc.poll() is None)

    def rollout(self) -> None:
        r = httpx.post(f"http://127.0.0.1:{self.live().port}/api/v1/rollouts", json={"gateways": [GW]},
                       headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        assert r.status_code == 201, r.text

    def command(self, op: str) -> dict:
        r = httpx.post(f"http://127.0.0.1:{self.live().port}/api/v1/gateways/{GW}/commands", json={"op": op},
                       headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    def kill(self, name: str) -> None:
        self.controllers[name].kill()

    def restart_broker(self) -> None:
        """kill -9 of Mosquitto, then started again on its port from its persistence file."""
        os.kill(self.broker.proc.pid, signal.SIGKILL)
        self.broker.proc.wait(10)
        self.broker.start()

    def close(self) -> None:
        try:
            super().close()
        finally:
            for c in self.controllers.values():
                c.stop()
            self.broker.stop()
            self.db.engine.dispose()


def gateway_ids(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Gateway.id)))
