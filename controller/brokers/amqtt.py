"""The embedded amqtt broker in a thread, optionally enforcing who connects and what each may use.

`AmqttBroker()` lets anyone in (tests, rigs). `AmqttBroker(authenticator=f, acl=g)` asks
`f(client_id, username, password) -> bool` once per CONNECT (it may block: it runs in a worker
thread, e.g. a database lookup) and `g(username, topic, write) -> bool` on every SUBSCRIBE,
PUBLISH, delivery and last will; `g` runs on the broker's loop, so it must be a fast pure function.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.brokers.base import _Broker, free_port

try:
    from amqtt.broker import Broker as _AmqttBroker
    from amqtt.contexts import Action
    from amqtt.errors import AMQTTError, NoDataError
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
    from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
except ImportError:  # amqtt not installed: Mosquitto still works
    BaseAuthPlugin = BaseTopicPlugin = _AmqttBroker = object  # type: ignore[assignment,misc]

log = logging.getLogger("citygate.broker")
Authenticator = Callable[[str, "str | None", "str | None"], bool]
Acl = Callable[[str, str, bool], bool]


class _ClosingBroker(_AmqttBroker):  # type: ignore[misc,valid-type]
    """amqtt's Broker with four fixes (amqtt 0.12):

    - each client's transport is closed once its session is over (0.12 leaves some open);
    - retained messages go only to the session's own matching filters and through the ACL
      (0.12 sends, on every CONNECT, the retained matches of every filter *anyone* holds, unchecked:
      a gateway would get every other gateway's table and state);
    - with an authenticator, a CONNECT is authenticated before it touches the session of its
      client id (0.12 first copies its credentials and last will into that session, or deletes it,
      and then takes it over even when refusing: anyone could cut a gateway off and plant a will
      that is published as that gateway's);
    - the ACL is asked synchronously: 0.12 checks each delivery while iterating its subscription
      dict, and the plugin manager's asyncio.gather yields to the loop there; a SUBSCRIBE handled
      meanwhile changes the dict and the rest of that broadcast is lost ("dictionary changed size
      during iteration").
    """

    auth_first = False
    acl_plugin = None  # an AmqttAcl, asked directly (see _topic_filtering)

    async def stream_connected(self, reader, writer, listener_name):
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            writer.close()

    async def _publish_retained_messages_for_subscription(self, subscription, session) -> None:
        topic_filter, qos = subscription
        if not any(s.client_id == session.client_id for s, _ in self._subscriptions.get(topic_filter, ())):
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if self._matches(topic, topic_filter) and await self._topic_filtering(session, topic, Action.RECEIVE):
                tasks.append(asyncio.ensure_future(
                    handler.mqtt_publish(topic, retained.data, min(qos, retained.qos or qos), retain=True)))
        if tasks:
            await asyncio.wait(tasks)

    async def _topic_filtering(self, session, topic, action) -> bool:
        if self.acl_plugin is not None:
            return self.acl_plugin.permits(session, topic, action)  # no await: nothing else runs meanwhile
        return await super()._topic_filtering(session, topic, action)

    async def _initialize_client_session(self, reader, writer, remote_address, remote_port):
        if not self.auth_first:
            return await super()._initialize_client_session(reader, writer, remote_address, remote_port)
        try:
            handler, incoming = await BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        except (AMQTTError, NoDataError) as e:
            raise AMQTTError(e) from e
        if not await self._authenticate(incoming, None):
            handler.attach(incoming, reader, writer)
            await handler.mqtt_connack_authorize(False)  # CONNACK 5, not authorized
            await writer.close()
            raise AMQTTError(f"client {incoming.client_id!r} (user {incoming.username!r}) refused")
        # from here as amqtt 0.12.1 does it
        if incoming.clean_session:
            await self._delete_session(incoming.client_id)
            incoming.parent = 0
        elif incoming.client_id in self._sessions:
            session, _ = self._sessions[incoming.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain", "keep_alive",
                         "username", "password"):
                setattr(session, name, getattr(incoming, name))
            incoming, incoming.parent = session, 1
        else:
            incoming.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if incoming.keep_alive > 0 and isinstance(delay, int):
            incoming.keep_alive += delay
        incoming.citygate_checked = True  # _handle_client_session authenticates again: once is enough
        return handler, incoming

    async def _authenticate(self, session, listener) -> bool:
        if getattr(session, "citygate_checked", False):
            session.citygate_checked = False
            return True
        return await super()._authenticate(session, listener)


class AmqttAuth(BaseAuthPlugin):  # type: ignore[misc,valid-type]
    """amqtt auth plugin: anyone, only the listed users, or whom `authenticator` accepts.

    Never marks a named client anonymous: amqtt's stock AnonymousAuthPlugin flags every session
    anonymous when anonymous access is on, and amqtt neither queues QoS 1 messages for nor keeps
    the persistent session of an anonymous client. Here only a client that sends no username is
    anonymous, as in Mosquitto.
    """

    @dataclass
    class Config:
        passwords: dict[str, str] | None = None
        authenticator: Any = None
        acl: Any = None

    def __init__(self, context) -> None:
        super().__init__(context)
        # client id -> the username it authenticated with; the ACL reads this, not session.username,
        # which a later CONNECT with the same client id overwrites
        self.who: dict[str, str] = {}

    async def authenticate(self, *, session) -> bool:
        cfg = self.context.config
        if cfg.authenticator is not None:
            if not session.username:
                return False
            if session.will_flag and cfg.acl is not None and not cfg.acl(session.username, session.will_topic, True):
                return False  # amqtt publishes a will without the PUBLISH check: check it here
            try:
                ok = await asyncio.to_thread(cfg.authenticator, session.client_id, session.username, session.password)
            except Exception:  # e.g. the database is down: refuse, say why, keep the broker serving
                log.exception("authenticating client %r failed; refused", session.client_id)
                return False
            if ok:
                self.who[session.client_id] = session.username
                session.is_anonymous = False
            return bool(ok)
        if cfg.passwords is not None:
            return session.username in cfg.passwords and cfg.passwords[session.username] == (session.password or "")
        session.is_anonymous = not session.username
        return True


class AmqttAcl(AmqttAuth, BaseTopicPlugin):  # type: ignore[misc,valid-type]
    """AmqttAuth plus topic checks by `acl(username, topic, write)` for SUBSCRIBE, PUBLISH and delivery."""

    def permits(self, session, topic, action) -> bool:
        user = self.who.get(session.client_id) if session is not None else None
        if user is None or not topic:
            return False
        return bool(self.context.config.acl(user, topic, action == Action.PUBLISH))

    async def topic_filtering(self, *, session=None, topic=None, action=None) -> bool:
        return self.permits(session, topic, action)


class AmqttBroker(_Broker):
    """The embedded amqtt broker in a thread with its own asyncio loop, on 127.0.0.1:port.

    Notes (amqtt 0.12): state lives in memory only, so stop()/start() forgets sessions and
    retained messages; queued messages of a persistent session are delivered with the retain
    flag set; a session that reconnects gets the retained messages of its subscribed filters
    again at QoS 0; keepalive is enforced at 1.0x the client's keepalive (Mosquitto: 1.5x).
    """

    def __init__(self, port: int | None = None, passwords: dict[str, str] | None = None,
                 start_timeout: float = 10.0, authenticator: Authenticator | None = None, acl: Acl | None = None):
        if acl is not None and authenticator is None:
            raise ValueError("an acl needs an authenticator: it checks the user each client authenticated as")
        self.port = port or free_port()
        self.passwords = passwords
        self.authenticator = authenticator
        self.acl = acl
        self.start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_ev: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._gate: threading.Event | None = None
        self.broker = None

    def _config(self) -> dict:
        plugin = "AmqttAcl" if self.acl is not None else "AmqttAuth"
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {f"{__name__}.{plugin}": {"passwords": self.passwords, "authenticator": self.authenticator,
                                                 "acl": self.acl}},
        }

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> AmqttBroker:
        """Start on the port; a restart right after stop() retries while the old connections' sockets close
        (under load their closing can trail the listener's by a moment: bind says the address is in use)."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                return self._start_once()
            except RuntimeError as e:
                if "address already in use" not in str(e) or time.monotonic() > deadline:
                    raise
                gc.collect()  # sockets of the old loop's connections left to the collector
                time.sleep(0.1)

    def _start_once(self) -> AmqttBroker:
        if self.running:
            return self
        if _AmqttBroker is object:
            raise RuntimeError("amqtt is not installed (pip install amqtt)")
        ready = threading.Event()
        self._error = None

        async def main() -> None:
            self._stop_ev = asyncio.Event()
            try:
                self.broker = _ClosingBroker(self._config())
                self.broker.auth_first = self.authenticator is not None
                self.broker.acl_plugin = self.broker.plugins_manager.get_plugin("AmqttAcl")
                await self.broker.start()
            except BaseException as e:  # reported to start()
                self._error = e
                ready.set()
                return
            ready.set()
            await self._stop_ev.wait()
            try:
                await asyncio.wait_for(self.broker.shutdown(), 5)
            finally:
                # a shutdown cut short by its timeout (under load) would leave the listening sockets open
                # in this dying loop, and a restart on the port could not bind: close them here, always
                for server in getattr(self.broker, "_servers", {}).values():
                    if getattr(server, "instance", None) is not None:
                        server.instance.close()
                me = asyncio.current_task()
                rest = [t for t in asyncio.all_tasks() if t is not me]
                for t in rest:
                    t.cancel()
                await asyncio.wait(rest, timeout=2) if rest else None

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
            except BaseException as e:  # noqa: BLE001 - keep the thread quiet; stop() reports
                self._error = self._error or e
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"amqtt-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(self.start_timeout) or self._error is not None:
            err = self._error
            self.stop()
            raise RuntimeError(f"amqtt did not start on {self.host}:{self.port}: {err!r}")
        return self  # Broker.start() returns once its listener is bound

    def pause(self, max_seconds: float = 60.0) -> None:
        """Block the broker's loop (at most max_seconds): connections stay open, nothing is answered."""
        if self.running and self._loop is not None and self._gate is None:
            self._gate = threading.Event()
            self._loop.call_soon_threadsafe(self._gate.wait, max_seconds)

    def resume(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.resume()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, ev = self._loop, self._stop_ev
        if loop is not None and ev is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"amqtt broker on port {self.port} did not stop within {timeout} s")
        # a shutdown cut short (its 5 s, under load) leaves the listener open in the dead loop's objects:
        # let go of them and collect, so their sockets close now
        self.broker = None
        gc.collect()
        # the listening socket must be gone before a restart on the same port: refused, not a timeout (a
        # listener nobody accepts on answers until its backlog is full, then connects time out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
            except ConnectionRefusedError:
                break
            except OSError:
                pass
            time.sleep(0.02)
