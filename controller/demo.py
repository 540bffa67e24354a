"""`citygate demo`: the whole system on one machine.

An embedded broker, SQLite, the reference deployment of DESIGN §9 as configuration, one
emulated board per city running the real firmware, a traffic generator placing calls with a
realistic mix, and the API with the admin console (sign in as `admin` with the printed password).
Ctrl-C stops every process it started.
"""

from __future__ import annotations

import fcntl
import os
import random
import secrets
import shutil
import socket
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from controller import reference
from controller.auth import create_token, create_user, hash_password
from controller.brokers import free_port
from controller.compiler import compile_gateway
from controller.models import Gateway, User
from controller.service import ControllerService
from controller.services.gateways import audit, store_password
from controller.settings import Settings

# the demo boards are the reference deployment's: four modules each (controller.reference)
PROFILE, PORTS, OUT_PORTS = reference.PROFILE, reference.PORTS, reference.OUT_PORTS


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Traffic:
    """Places calls on every board: answered, busy centre, abandoned, 505 and the old line."""

    def __init__(self, rigs: dict, rate_per_min: float, seed: int = 7):
        self.rigs = rigs
        self.gap = 60.0 / max(rate_per_min, 0.1)
        self.rand = random.Random(seed)
        self.placed = 0
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(gw,), daemon=True, name=f"traffic-{gw}")
                        for gw in rigs]

    def start(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(40)

    def _run(self, gw: str) -> None:
        rig, r = self.rigs[gw], random.Random(hash(gw))
        n = 0
        while not self._stop.wait(r.expovariate(1.0 / self.gap)):
            n += 1
            caller = "+38067%07d" % r.randrange(10**7)
            roll = r.random()
            busy = roll < 0.15  # the Mariupol centre is full: failover to the reserve
            rig.network.destination(reference.CENTRES["mariupol-102"]["number"], busy=busy,
                                    answer_after_s=r.uniform(1, 4), talk_s=r.uniform(4, 20))
            if roll < 0.65:
                call = rig.network.call("gsm1", caller)
            elif roll < 0.78:
                call = rig.network.call("gsm1", caller, hangup_after_s=r.uniform(0.5, 2.5))  # gives up
            elif roll < 0.95:
                call = rig.network.call("gsm3", caller)  # the 505 line
            else:
                call = rig.network.call("gsm4", caller)  # the old line into occupied Donetsk
            self.placed += 1
            try:
                call.wait(90)
            except TimeoutError:
                pass


class DemoBusy(RuntimeError):
    """Another demo runs on the same data directory."""


class Demo:
    def __init__(self, data_dir: Path | None, http_port: int, rate_per_min: float, console):
        self.own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="citygate-demo-")).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = self._lock_data_dir()
        self.http_port = http_port if _port_free(http_port) else free_port()
        self.rate = rate_per_min
        self.console = console
        self.service: ControllerService | None = None
        self.rigs: dict = {}
        self.traffic: Traffic | None = None
        self.token = ""
        self.password = ""

    def _lock_data_dir(self):
        """One demo per data directory: two would share one database and four flash images."""
        lock = open(self.data_dir / "demo.lock", "a+")  # noqa: SIM115 (held open while the demo runs)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise DemoBusy(f"another demo ({holder}) is using {self.data_dir}: stop it first, "
                           "or give this one another --data directory") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        return lock

    def start(self) -> None:
        from emulator.board import EmulatedRig

        say = self.console.print
        settings = Settings(database_url=f"sqlite:///{self.data_dir / 'citygate.db'}", broker="embedded",
                            listen_port=self.http_port)
        say(f"[bold]citygate demo[/] — data in {self.data_dir}")
        self.service = ControllerService(settings).start()
        say(f"  controller up: API {self.service.url}/api/v1, broker {self.service.broker_url} (embedded amqtt; "
            "gateways sign in with their own passwords)")
        with self.service.db.session() as s:
            if s.get(Gateway, "gw-mariupol-1") is None:
                reference.seed(s, profile=PROFILE, ports=PORTS, out_ports=OUT_PORTS)
            admin = s.scalars(select(User).where(User.name == "demo-admin")).first() or create_user(
                s, "demo-admin", "admin")
            self.token = create_token(s, admin, "demo")
            # the console's sign-in: `admin`, with a new password each start (printed beside the URL)
            self.password = secrets.token_urlsafe(9)
            console_admin = s.scalars(select(User).where(User.name == "admin")).first()
            if console_admin is None:
                create_user(s, "admin", "admin", self.password)
            else:
                console_admin.password_hash, console_admin.disabled = hash_password(self.password), False
            # the demo's own boards are the reference gateways; gateways a user registered meanwhile are
            # theirs to run (`board emulate --bundle`), with the passwords they were given
            ours = [gw for gw in s.scalars(select(Gateway).order_by(Gateway.id)) if gw.id in reference.CITIES]
            gateways = {gw.id: gw.key_hex for gw in ours}
            # the embedded broker admits a gateway only with its password: give the seeded ones theirs,
            # as registration does, and flash each board with it as its bundle would
            passwords = {gw.id: store_password(settings.secret_key, gw) for gw in ours}
            for gw_id in passwords:  # handed to the emulated boards: on the secret audit like any hand-out
                audit(s, gw_id, "demo", "register")
            for gw in ours:
                compile_gateway(s, gw)
        for gw in gateways:
            self.service.bridge.publish_latest(gw)
        say(f"  reference deployment compiled for {len(gateways)} gateways; tables published (retained)")
        kyiv_quarters = int(datetime.now(ZoneInfo("Europe/Kyiv")).utcoffset().total_seconds()) // 900
        for gw, key in gateways.items():
            rig = EmulatedRig(gw, key, self.service.broker_url, profile=PROFILE,
                              workdir=self.data_dir / "boards" / gw, password=passwords[gw])
            # the operator's network time is the real time (as Kyiv's local time on AT+CCLK?): records
            # carry the wall clock, and the 505 line is in or out of hours as it really is now
            rig.network.set_time(time.time(), tz_quarters=kyiv_quarters)
            for centre in reference.CENTRES.values():
                rig.network.destination(centre["number"], answer_after_s=2, talk_s=8)
            rig.power_on()
            self.rigs[gw] = rig
            say(f"  board {gw}: real firmware on MicroPython, profile {PROFILE}")
        self._wait_online(60)
        self.traffic = Traffic(self.rigs, self.rate).start()
        say(f"  traffic: about {self.rate:g} calls a minute per city (answered, busy centre, abandoned, "
            "505 line, old line into occupied territory)")
        say("")
        say(f"[bold green]Open {self.service.url}/login[/]   login: admin / {self.password}", soft_wrap=True,
            highlight=False)
        say("Every tool reaches the demo; paste this into another shell:", soft_wrap=True)
        for line in self.reach_lines():
            self.console.print(line, soft_wrap=True, markup=False, highlight=False)
        say("Ctrl-C stops everything.")

    def reach_lines(self) -> list[str]:
        """Shell lines that point the CLI, curl and mosquitto_sub at this demo (unwrapped, ready to paste)."""
        host, port = self.service.broker_url.removeprefix("mqtt://").rsplit(":", 1)
        watch_user, watch_pw = self.service.watch
        return [
            f"export CITYGATE_DATABASE_URL='{self.service.settings.database_url}'",
            f"export CITYGATE_TOKEN='{self.token}' CITYGATE_API='{self.service.url}'   # API token, role admin",
            f"export CITYGATE_BROKER='{self.service.broker_url}'   # where boards reach the broker (bundles)",
            f'curl -s -H "Authorization: Bearer $CITYGATE_TOKEN" {self.service.url}/api/v1/gateways',
            "citygate gateway list; citygate report calls --group city --interval hour",
            "citygate rollout impact; citygate rollout start --canary gw-toretsk-1 --wait 60",
            f"mosquitto_sub -h {host} -p {port} -u {watch_user} -P '{watch_pw}' -v -t 'citygate/v1/#'"
            "   # read-only account",
        ]

    def _wait_online(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.service.db.session() as s:
                online = [g.id for g in s.scalars(select(Gateway)) if g.online and g.applied_version]
            if len(online) == len(self.rigs):
                self.console.print(f"  all {len(online)} boards online with their tables")
                return
            time.sleep(0.5)
        self.console.print(f"[yellow]  only {len(online)} of {len(self.rigs)} boards online after {timeout:.0f} s[/]")

    def stop(self) -> None:
        if self.traffic:
            self.traffic.stop()
        for rig in self.rigs.values():
            rig.close()
        if self.service:
            self.service.stop()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
        if self.own_dir:  # a temporary demo leaves nothing behind
            shutil.rmtree(self.data_dir, ignore_errors=True)
