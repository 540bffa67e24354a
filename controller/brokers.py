"""Real MQTT brokers on loopback for tests, demos and rigs: Mosquitto and the embedded amqtt.

Both classes share one interface:

    with Mosquitto() as b:          # or AmqttBroker()
        b.host, b.port, b.url       # "127.0.0.1", 40123, "mqtt://127.0.0.1:40123"
        b.stop(); b.start()         # an outage: same port, the broker forgets in-memory state
        b.pause(); b.resume()       # a silent outage: connections stay open but nothing answers
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 5.0, alive=None) -> None:
    """Block until host:port accepts a TCP connection; `alive()` False aborts early."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if alive is not None and not alive():
            raise RuntimeError(f"broker on {host}:{port} died while starting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing accepts connections on {host}:{port} after {timeout} s")
        time.sleep(0.02)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto")
    if found:
        return found
    if os.path.exists("/usr/sbin/mosquitto"):
        return "/usr/sbin/mosquitto"
    raise FileNotFoundError("mosquitto not found on PATH nor in /usr/sbin (apt-get install mosquitto)")


def mosquitto_password_line(user: str, password: str, iterations: int = 101) -> str:
    """One password_file line in Mosquitto 2's `$7$` format (PBKDF2-SHA512), as mosquitto_passwd writes it."""
    salt = os.urandom(12)
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"{user}:$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


class _Broker:
    host = HOST
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.stop()


class Mosquitto(_Broker):
    """A private `mosquitto` process with its own config, log and (optional) ACL and password files.

    `acl`: text of an ACL file (mosquitto `acl_file` syntax). `passwords`: {user: password};
    when given, anonymous clients are refused. `persistence=True` keeps sessions and retained
    messages across stop()/start() (mosquitto saves its database on SIGTERM).
    """

    def __init__(self, port: int | None = None, conf_extra: str = "", acl: str | None = None,
                 passwords: dict[str, str] | None = None, persistence: bool = False,
                 start_timeout: float = 5.0):
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="mosquitto-")
        self.dir = Path(self._tmp.name)
        self.log_path = self.dir / "mosquitto.log"
        self.conf_path = self.dir / "mosquitto.conf"
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        lines = [
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'false' if passwords else 'true'}",
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
        ]
        if os.geteuid() == 0:  # else mosquitto drops to user "mosquitto" and cannot read its own files
            lines.append("user root")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if passwords:
            pw = self.dir / "passwords"
            pw.write_text("".join(mosquitto_password_line(u, p) + "\n" for u, p in passwords.items()))
            pw.chmod(0o600)
            lines.append(f"password_file {pw}")
        if acl is not None:
            acl_path = self.dir / "acl"
            acl_path.write_text(acl)
            acl_path.chmod(0o600)
            lines.append(f"acl_file {acl_path}")
        self.conf_path.write_text("\n".join(lines) + "\n" + conf_extra + "\n")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Mosquitto:
        if self.running:
            return self
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf_path)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_port(self.host, self.port, self.start_timeout, alive=lambda: self.running)
        except Exception as e:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {e}\n{self.log()}") from e
        return self

    def pause(self) -> None:
        """SIGSTOP: sockets stay open, nothing is answered (a silent link or a hung broker)."""
        if self.running:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (mosquitto saves its database if persistent), SIGKILL if it lingers."""
        self.resume()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._tmp.cleanup()

    def log(self) -> str:
        text = ""
        for p in (self.log_path, self.dir / "stderr.log"):
            if p.exists():
                text += p.read_text(errors="replace")
        return text


# --- amqtt ----------------------------------------------------------------------------------------

try:
    from amqtt.broker import Broker as _AmqttBroker
    from amqtt.plugins.base import BaseAuthPlugin
except ImportError:  # amqtt not installed: Mosquitto still works
    BaseAuthPlugin = _AmqttBroker = object  # type: ignore[assignment,misc]


class _ClosingBroker(_AmqttBroker):  # type: ignore[misc,valid-type]
    """amqtt's Broker, closing each client's transport once its session is over (0.12 leaves some open)."""

    async def stream_connected(self, reader, writer, listener_name):
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            writer.close()


class AmqttAuth(BaseAuthPlugin):  # type: ignore[misc,valid-type]
    """amqtt auth plugin: anyone (or only the listed users), WITHOUT marking named clients anonymous.

    amqtt's stock AnonymousAuthPlugin flags every session anonymous when anonymous access is on,
    and amqtt neither queues QoS 1 messages for nor keeps the persistent session of an anonymous
    client. Here only a client that sends no username is anonymous, as in Mosquitto.
    """

    @dataclass
    class Config:
        passwords: dict[str, str] | None = None

    async def authenticate(self, *, session) -> bool:
        passwords = self.context.config.passwords
        if passwords is not None:
            return session.username in passwords and passwords[session.username] == (session.password or "")
        session.is_anonymous = not session.username
        return True


class AmqttBroker(_Broker):
    """The embedded amqtt broker in a thread with its own asyncio loop, on 127.0.0.1:port.

    Notes (amqtt 0.12): state lives in memory only, so stop()/start() forgets sessions and
    retained messages; queued messages of a persistent session are delivered with the retain
    flag set; a session that reconnects gets the retained messages of *every* subscribed filter
    again at QoS 0; keepalive is enforced at 1.0x the client's keepalive (Mosquitto: 1.5x).
    """

    def __init__(self, port: int | None = None, passwords: dict[str, str] | None = None,
                 start_timeout: float = 10.0):
        self.port = port or free_port()
        self.passwords = passwords
        self.start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_ev: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._gate: threading.Event | None = None
        self.broker = None

    def _config(self) -> dict:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {f"{__name__}.AmqttAuth": {"passwords": self.passwords}},
        }

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> AmqttBroker:
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
        # the listening socket must be gone before a restart on the same port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
            except OSError:
                break
            time.sleep(0.02)
