"""A real Mosquitto configured only by `citygate broker config`, running as an unprivileged user,
and a database with two gateways registered the real way (shared by the broker tests)."""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from controller import reference
from controller.api.routes.gateways import GatewayIn, register
from controller.brokers import Mosquitto, free_port
from controller.cli import app
from controller.db import Database
from controller.settings import get_settings

SECRET = "broker-auth-test-secret-" + "s" * 32
CTL_USER, CTL_PW = "citygate-controller", "controller-test-password"
A, B = "gw-a-1", "gw-b-1"


def user_exists(name: str) -> bool:
    try:
        return bool(pwd.getpwnam(name))
    except KeyError:
        return False


BROKER_USER = "mosquitto" if user_exists("mosquitto") else "nobody"  # what Mosquitto drops to


def registered_db(tmp_path, monkeypatch):
    """For a `db` fixture: the reference region (gateways without passwords) plus gw-a-1 and gw-b-1
    registered; yields (database, their passwords)."""
    url = f"sqlite:///{tmp_path / 'citygate.db'}"
    database = Database(url)
    database.upgrade()
    with database.session() as s:
        reference.seed(s)
        made = {gw: register(s, GatewayIn(id=gw, city="Mariupol", services={"gsm1": "102"}, out_ports=["gsm2"]),
                             SECRET, actor="broker-test") for gw in (A, B)}
    for name, value in (("DATABASE_URL", url), ("SECRET_KEY", SECRET), ("BROKER_PASSWORD", CTL_PW)):
        monkeypatch.setenv("CITYGATE_" + name, value)
    get_settings.cache_clear()
    yield database, {gw: m.password for gw, m in made.items()}
    get_settings.cache_clear()


@contextmanager
def reachable_dir():
    """A fresh directory under /tmp that other users may enter (pytest's tmp_path is root's only)."""
    with tempfile.TemporaryDirectory(prefix="citygate-broker-") as base:
        os.chmod(base, 0o755)
        yield Path(base)


def broker_config(out: Path, *args: str):
    """`citygate broker config --out OUT ARGS...`, its result."""
    return CliRunner().invoke(app, ["broker", "config", "--out", str(out), *args], env={"COLUMNS": "250"})


@contextmanager
def configured_mosquitto(strip: str | None = None):
    """A Mosquitto running as BROKER_USER whose listener and every access rule come from
    `citygate broker config --owner BROKER_USER` (`strip`: the conf without lines starting with it)."""
    port = free_port()
    with reachable_dir() as base:
        out = base / "citygate"
        result = broker_config(out, "--port", str(port), "--bind", "127.0.0.1", "--owner", BROKER_USER)
        assert result.exit_code == 0, result.output
        assert "include_dir" in result.output and "gw-mariupol-1" in result.output  # skipped: never given one
        who = pwd.getpwnam(BROKER_USER)
        for name in ("password_file", "acl_file", "citygate.conf"):
            st = (out / name).stat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, who.pw_uid, who.pw_gid), name
        conf = (out / "citygate.conf").read_text()
        assert "allow_anonymous false" in conf and "\nuse_username_as_clientid true\n" in conf
        if strip:
            (out / "citygate.conf").write_text("".join(line for line in conf.splitlines(keepends=True)
                                                       if not line.startswith(strip)))
        with Mosquitto(port=port, include_dir=out, run_as=BROKER_USER) as m:
            m.citygate_out = out
            yield m
