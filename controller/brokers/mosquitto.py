"""A private Mosquitto process on loopback, and its password-file format (tests, demos, rigs)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from controller.brokers.base import HOST, _Broker, free_port, wait_port


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


class Mosquitto(_Broker):
    """A private `mosquitto` process with its own config, log and (optional) ACL and password files.

    `acl`: text of an ACL file (mosquitto `acl_file` syntax). `passwords`: {user: password};
    when given, anonymous clients are refused. `persistence=True` keeps sessions and retained
    messages across stop()/start() (mosquitto saves its database on SIGTERM). `include_dir`: a
    directory of `*.conf` files that set the listener (on `port`) and the access rules, as
    `citygate broker config` writes them; this class then writes neither. `run_as`: started by
    root, Mosquitto drops to this user (its `user` option) before it reads any of its files, as
    an installed one does; by default it stays root when started by root.
    """

    def __init__(self, port: int | None = None, conf_extra: str = "", acl: str | None = None,
                 passwords: dict[str, str] | None = None, persistence: bool = False,
                 start_timeout: float = 5.0, include_dir: str | Path | None = None, run_as: str | None = None):
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="mosquitto-")
        self.dir = Path(self._tmp.name)
        self.log_path = self.dir / "mosquitto.log"
        self.conf_path = self.dir / "mosquitto.conf"
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        lines = [] if include_dir else [
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'false' if passwords else 'true'}",
        ]
        lines += [
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
        ]
        owner = None
        if run_as:
            import pwd

            who = pwd.getpwnam(run_as)
            owner = (who.pw_uid, who.pw_gid)
            os.chown(self.dir, *owner)  # its log, database and files live here
            lines.append(f"user {run_as}")
        elif os.geteuid() == 0:  # else mosquitto drops to user "mosquitto" and cannot read its own files
            lines.append("user root")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if passwords:
            pw = self.dir / "passwords"
            pw.write_text("".join(mosquitto_password_line(u, p) + "\n" for u, p in passwords.items()))
            pw.chmod(0o600)
            if owner:
                os.chown(pw, *owner)
            lines.append(f"password_file {pw}")
        if acl is not None:
            acl_path = self.dir / "acl"
            acl_path.write_text(acl)
            acl_path.chmod(0o600)
            if owner:
                os.chown(acl_path, *owner)
            lines.append(f"acl_file {acl_path}")
        if include_dir:
            lines.append(f"include_dir {Path(include_dir).resolve()}")
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

