"""What tests/test_deploy_doc.py needs to follow docs/deploy.md: the document's blocks, a systemd unit
started as systemd would start it (Environment=, then EnvironmentFile=s; %i and ${VAR} in ExecStart=; its
own process group, stopped with KillSignal= then SIGKILL after TimeoutStopSec=), and a gateway sending
records over the broker's TLS listener with its own account."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

from protocols import messages, topics

DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
BATCH = 20  # records per message
FENCE = re.compile(r"^([ \t]*)```(\S+)([^\n]*)\n(.*?)^\1```[ \t]*$", re.M | re.S)  # also in a list item


def blocks(doc: Path = DOC) -> list[tuple[str, dict, str]]:
    """Every fenced block of the document: (language, {key: value or True}, body)."""
    out = []
    for _indent, lang, info, body in FENCE.findall(doc.read_text()):
        body = textwrap.dedent(body)
        attrs = {w.split("=", 1)[0]: (w.split("=", 1)[1] if "=" in w else True) for w in info.split()}
        out.append((lang, attrs, body))
    return out


def env_file(body: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments and blanks skipped)."""
    return dict(line.split("=", 1) for line in body.splitlines() if line.strip() and not line.startswith("#"))


def commands(body: str) -> list[list[str]]:
    joined = re.sub(r"\\\n", " ", body)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.split("#", 1)[0].strip()]


class Unit:
    """A systemd service unit's [Service] settings that start and stop the process."""

    def __init__(self, body: str):
        self.items: list[tuple[str, str]] = []
        section = None
        for line in body.splitlines():
            if line.startswith("["):
                section = line.strip()
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                self.items.append((key.strip(), value.strip()))

    def get(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]

    def environment(self, instance: str, read) -> dict[str, str]:
        """Environment= first; EnvironmentFile=s (in order) override it, as systemd does."""
        env = {}
        for value in self.get("Environment"):
            k, v = value.replace("%i", instance).split("=", 1)
            env[k] = v
        for path in self.get("EnvironmentFile"):
            env.update(env_file(read(path.lstrip("-").replace("%i", instance))))
        return env

    def argv(self, instance: str, env: dict[str, str]) -> list[str]:
        (line,) = self.get("ExecStart")
        line = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env[m.group(1) or m.group(2)], line.replace("%i", instance))
        return shlex.split(line)


class Process:
    """One unit instance: its own process group (systemd's control group), stopped with KillSignal=."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path, unit: Unit):
        self.name, self.log, self.port = name, log, int(env["CITYGATE_LISTEN_PORT"])
        self.kill_signal = getattr(signal, unit.get("KillSignal")[0])
        self.stop_s = float(unit.get("TimeoutStopSec")[0])
        cwd.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True, stdout=out,
                                         stderr=subprocess.STDOUT)

    def healthy(self) -> dict | None:
        assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
        try:
            r = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 and r.json().get("ok") else None

    def up(self) -> bool:
        assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
        return "controller up" in self.log.read_text()

    def metric(self, name: str) -> float:
        body = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return float(next(line.split()[1] for line in body.splitlines() if line.startswith(f"citygate_{name} ")))

    def metric_names(self) -> set[str]:
        body = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return {line.split()[0].split("{")[0] for line in body.splitlines() if line and not line.startswith("#")}

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.signal_group(self.kill_signal)
            try:
                self.proc.wait(self.stop_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # what is left of the group, as systemd's final SIGKILL


class TlsGateway:
    """A gateway on the broker's TLS listener with its own account, sending records as the firmware does:
    batches from the last ack, resent when no ack came for a second."""

    def __init__(self, gw: str, password: str, port: int, ca: Path):
        self.gw, self.sid, self.acked, self.sent, self.sent_at = gw, "s-" + gw, 0, 0, 0.0
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=gw)
        self.c.username_pw_set(gw, password)
        self.c.tls_set(ca_certs=str(ca))
        self.c.on_message = self._on_ack
        self.c.on_connect = lambda c, *a: c.subscribe(topics.events_ack(gw), qos=1)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_ack(self, c, u, msg):
        ack = messages.decode("events_ack", msg.payload)
        with self.lock:
            if ack["store_id"] == self.sid and ack["seq"] > self.acked:
                self.acked = ack["seq"]
                self.sent = max(self.sent, self.acked)

    def pump(self, upto: int) -> bool:
        with self.lock:
            now = time.monotonic()
            if self.sent > self.acked and now - self.sent_at > 1.0:
                self.sent = self.acked  # nothing heard: from the last ack again (the survivor stores it once)
            while self.sent < upto and self.sent - self.acked < 4 * BATCH:
                first, last = self.sent + 1, min(self.sent + BATCH, upto)
                recs = [messages.call_record(q, 1780000000 + q * 7, "gsm1", "+380671234567", "police-102",
                                             "answered", "mariupol-102", 1, 2, 30, "ok")
                        for q in range(first, last + 1)]
                payload = messages.encode("events", messages.events(self.sid, recs))
                for _ in range(2 if first == 1 else 1):  # the first batch twice: a duplicate to be ignored
                    self.c.publish(topics.events(self.gw), payload, qos=1)
                self.sent, self.sent_at = last, now
            return self.acked >= upto

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
