"""The running controller: database, broker, MQTT bridge, HTTP API, background duties.

With `broker = "embedded"` it runs amqtt enforcing gateway credentials and the §3 ACL.

`citygate serve` runs one until Ctrl-C; `citygate demo` runs one beside emulated boards.
"""

from __future__ import annotations

import gc
import logging
import secrets
import sys
import threading
import time

import uvicorn

from controller.broker_access import CONTROLLER_USER, BrokerAccess
from controller.brokers import AmqttBroker
from controller.db import Database
from controller.settings import Settings

log = logging.getLogger("citygate")
# CPython hands the GIL over every 5 ms by default: the MQTT network thread then waits that long
# behind the ingest writer each time a packet arrives. At 0.5 ms a 1,000-gateway rollout's acks
# arrive about a third sooner and ingest keeps pace with the wire (bench/controller_bench.py).
GIL_SWITCH_S = 0.0005


def tune_interpreter() -> None:
    """Settings of the process the controller runs in, applied once it is up (the bench does too).

    A short GIL switch interval lets the MQTT network thread in while other threads work; freezing
    what start-up made (modules, the app, the schema: most of the heap) keeps it out of every later
    full collection, which otherwise stopped the process for ~100 ms during a rollout.
    """
    sys.setswitchinterval(GIL_SWITCH_S)
    gc.collect()
    gc.freeze()


class ControllerService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database_url)
        self.broker: AmqttBroker | None = None
        self.bridge = None
        self.server: uvicorn.Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def broker_url(self) -> str:
        if self.settings.broker == "embedded":
            return self.broker.url
        return self.settings.broker

    @property
    def url(self) -> str:
        return f"http://{self.settings.listen_host}:{self.server.config.port if self.server else 0}"

    def start(self) -> ControllerService:
        from controller.api.app import create_app
        from controller.bridge import Bridge
        from controller.web import router

        self.db.upgrade()
        password = self.settings.broker_password
        user = self.settings.broker_user or (CONTROLLER_USER if password else None)  # as `citygate broker config`
        if self.settings.broker == "embedded":
            # the embedded broker admits registered gateways and this controller only (DESIGN §3);
            # without a configured password the controller's account gets a random one per process
            user, password = user or CONTROLLER_USER, password or secrets.token_urlsafe(32)
            access = BrokerAccess(self.db, user, password)
            self.broker = AmqttBroker(port=self.settings.broker_port or None, authenticator=access.authenticate,
                                      acl=access.acl)
            self.broker.start()
        self.bridge = Bridge(self.db, self.broker_url, user, password, ca_file=self.settings.broker_ca).start()
        app = create_app(self.db, self.bridge)
        app.include_router(router)
        config = uvicorn.Config(app, host=self.settings.listen_host, port=self.settings.listen_port,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        t = threading.Thread(target=self.server.run, name="citygate-http", daemon=True)
        t.start()
        self._threads.append(t)
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            raise RuntimeError(f"the API could not listen on {self.settings.listen_host}:{self.settings.listen_port}")
        duties = threading.Thread(target=self._duties, name="citygate-duties", daemon=True)
        duties.start()
        self._threads.append(duties)
        tune_interpreter()
        return self

    def _duties(self) -> None:
        """Advance staged rollouts every few seconds."""
        from controller.rollouts import advance_rollouts

        while not self._stop.wait(2):
            try:
                with self.db.session() as s:
                    advance_rollouts(s, self.bridge)
            except Exception:
                log.exception("rollout duty failed")

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True
        if self.bridge is not None:
            self.bridge.stop()
        if self.broker is not None:
            self.broker.stop()
        for t in self._threads:
            t.join(10)
        gc.unfreeze()  # what start-up froze may be collected again (a process that starts services in turn)
