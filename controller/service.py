"""The running controller: database, broker, MQTT bridge, HTTP API, background duties.

With `broker = "embedded"` it runs amqtt enforcing gateway credentials and the §3 ACL.

Past one machine (an external broker, PostgreSQL), several processes run side by side, each in a
role: `api` (HTTP; its bridge publishes and takes command replies only), `ingest` (no HTTP; stores
what gateways send) or `all`. Against an external broker the ingest is shared through MQTT shared
subscriptions (`$share/citygate/...`): each message reaches one process. Whatever the role, every
process is a candidate leader (controller.leader): only the one holding the lock runs the duties.

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

from controller.brokers import AmqttBroker
from controller.brokers.access import CONTROLLER_USER, BrokerAccess, watch_password
from controller.db import Database
from controller.leader import Leader, migration_lock
from controller.settings import Settings

log = logging.getLogger("citygate")
# CPython hands the GIL over every 5 ms by default: the MQTT network thread then waits that long
# behind the ingest writer each time a packet arrives. At 0.5 ms a 1,000-gateway rollout's acks
# arrive about a third sooner and ingest keeps pace with the wire (bench/controller_bench.py).
GIL_SWITCH_S = 0.0005
ROLES = ("all", "api", "ingest")
SHARE_GROUP = "citygate"
DUTY_EVERY_S = 2.0


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
    """`role`: what this process does (ROLES); `instance`: its name among the controller's processes
    (its MQTT client id is `citygate-{instance}`, which must differ between processes)."""

    def __init__(self, settings: Settings, role: str = "all", instance: str = "controller"):
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if role != "all" and settings.broker == "embedded":
            raise ValueError(f"role {role!r}: processes share the work through an external broker "
                             "(CITYGATE_BROKER=mqtt://...), not the embedded one")
        self.settings, self.role, self.instance = settings, role, instance
        self.db = Database(settings.database_url)
        self.leader = Leader(settings.database_url, instance)
        self.broker: AmqttBroker | None = None
        self.watch: tuple[str, str] | None = None  # the embedded broker's read-only account (user, password)
        self.bridge = None
        self.server: uvicorn.Server | None = None
        self.alerts = None  # the leader's alert duty (controller.alert_webhooks.AlertDuty), once duties run
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
        from controller.ingest.bridge import Bridge
        from controller.web import router

        with migration_lock(self.db.engine):
            self.db.upgrade()
        user, password = self.settings.broker_credentials()
        if self.settings.broker == "embedded":
            # the embedded broker admits registered gateways and this controller only (DESIGN §3);
            # without a configured password the controller's account gets a random one per process
            user, password = user or CONTROLLER_USER, password or secrets.token_urlsafe(32)
            access = BrokerAccess(self.db, user, password, watch_password(self.settings.secret_key))
            self.watch = (access.watch_user, watch_password(self.settings.secret_key))
            self.broker = AmqttBroker(port=self.settings.broker_port or None, authenticator=access.authenticate,
                                      acl=access.acl)
            self.broker.start()
        self.bridge = Bridge(self.db, self.broker_url, user, password, ca_file=self.settings.broker_ca,
                             db_alert_after_s=self.settings.db_alert_after_s, client_id=f"citygate-{self.instance}",
                             share_group=None if self.broker is not None else SHARE_GROUP,
                             ingest=self.role != "api").start()
        if self.role != "ingest":
            self._serve_http(create_app, router)
        self.leader.start()
        duties = threading.Thread(target=self._duties, name="citygate-duties", daemon=True)
        duties.start()
        self._threads.append(duties)
        tune_interpreter()
        return self

    def _serve_http(self, create_app, router) -> None:
        app = create_app(self.db, self.bridge, self.settings)
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

    def _duties(self) -> None:
        """Advance staged rollouts every few seconds and evaluate the alert rules (controller.alert_webhooks),
        on the leader only."""
        from controller.alert_webhooks import AlertDuty
        from controller.rollouts import advance_rollouts
        from controller.services.report_schedule import ReportDuties

        self.alerts = AlertDuty(self.db, self.settings, self.bridge)
        self.reports = ReportDuties(self.settings)
        try:
            while not self._stop.wait(DUTY_EVERY_S):
                try:
                    self.alerts.tick(self.leader.is_leader)
                except Exception:
                    log.exception("alert duty failed")
                if not self.leader.is_leader:
                    continue
                try:
                    with self.db.session() as s:
                        advance_rollouts(s, self.bridge)
                except Exception:
                    log.exception("rollout duty failed")
                self.reports.tick(self.db)  # scheduled reports, the privacy purge (logs, never raises)
        finally:
            self.alerts.stop()

    def stop(self) -> None:
        self._stop.set()
        self.leader.stop()
        if self.server is not None:
            self.server.should_exit = True
        if self.bridge is not None:
            self.bridge.stop()
        if self.broker is not None:
            self.broker.stop()
        for t in self._threads:
            t.join(10)
        gc.unfreeze()  # what start-up froze may be collected again (a process that starts services in turn)
