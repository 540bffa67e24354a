"""A private PostgreSQL cluster for a test that restarts its database (the machine's own server is never
touched): initdb into a temp directory, one free loopback port, trust auth; run as the `postgres` user
when this process is root (PostgreSQL refuses root). `skip_reason()` says why it cannot be made."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from controller.brokers import free_port, wait_port


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def skip_reason() -> str | None:
    if _bindir() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _no_postgres_user()):
        return "running as root without a `postgres` user to run a private cluster as"
    return None


def _no_postgres_user() -> bool:
    import pwd

    try:
        pwd.getpwnam("postgres")
        return False
    except KeyError:
        return True


class PrivateCluster:
    """`with PrivateCluster() as pg: pg.url ... pg.restart()`; `restart(mode)` is pg_ctl's stop mode
    (`immediate`: as a crash, no checkpoint)."""

    def __init__(self):
        self.bin = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="citygate-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        r = subprocess.run([*_as_user(), str(self.bin / tool), *args], capture_output=True, text=True, timeout=120,
                           cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stdout}\n{r.stderr}")

    def start(self) -> PrivateCluster:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "-t", "60", "start")
        wait_port("127.0.0.1", self.port, 30)
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def __enter__(self) -> PrivateCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
