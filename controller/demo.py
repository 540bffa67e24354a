"""`citygate demo`: the whole system on one machine.

An embedded broker, SQLite, the reference deployment of DESIGN §9 as configuration, one
emulated board per city running the real firmware, a traffic generator placing calls with a
realistic mix, and the API with its overview page. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import select

from controller import reference
from controller.api.routes.gateways import store_password
from controller.auth import create_token, create_user
from controller.brokers import free_port
from controller.compiler import compile_gateway
from controller.models import Gateway, User
from controller.service import ControllerService
from controller.settings import Settings

# the demo boards: four modules each; citizens' 102 on gsm1, the 505 line on gsm3, centres via gsm2
PROFILE = "esp32-wrover-4gsm"
PORTS = {"gsm1": "102", "gsm3": "505", "gsm4": "102-old"}
OUT_PORTS = ["gsm2"]
# the local hour each city's network clock starts at: Sloviansk is past the 505 line's hours
START_HOUR = {"gw-mariupol-1": 11, "gw-kramatorsk-1": 14, "gw-sloviansk-1": 20, "gw-toretsk-1": 10}


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


class Demo:
    def __init__(self, data_dir: Path | None, http_port: int, rate_per_min: float, console):
        self.own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="citygate-demo-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.http_port = http_port if _port_free(http_port) else free_port()
        self.rate = rate_per_min
        self.console = console
        self.service: ControllerService | None = None
        self.rigs: dict = {}
        self.traffic: Traffic | None = None
        self.token = ""

    def start(self) -> None:
        from hil_tests.rig.emulated import EmulatedRig

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
            gateways = {gw.id: gw.key_hex for gw in s.scalars(select(Gateway))}
            # the embedded broker admits a gateway only with its password: give the seeded ones theirs,
            # as registration does, and flash each board with it as its bundle would
            passwords = {gw.id: store_password(settings.secret_key, gw) for gw in s.scalars(select(Gateway))}
            for gw in s.scalars(select(Gateway)):
                compile_gateway(s, gw)
        for gw in gateways:
            self.service.bridge.publish_latest(gw)
        say(f"  reference deployment compiled for {len(gateways)} gateways; tables published (retained)")
        day = int(time.time()) // 86400 * 86400
        for gw, key in gateways.items():
            rig = EmulatedRig(gw, key, self.service.broker_url, profile=PROFILE,
                              workdir=self.data_dir / "boards" / gw, password=passwords[gw])
            rig.network.set_time(day + (START_HOUR[gw] - 2) * 3600)  # Kyiv is UTC+2 in winter
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
        say(f"[bold green]Open {self.service.url}/#token={self.token}[/]")
        say(f"  API token (role admin): {self.token}")
        say(f"  e.g. curl -H 'Authorization: Bearer {self.token}' {self.service.url}/api/v1/gateways")
        say("  Ctrl-C stops everything.")

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
