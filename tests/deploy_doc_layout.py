"""docs/deploy.md's layouts started on this machine, as the document says (tests/test_deploy_doc.py).

A layout is the document's blocks without a `layout=` mark ("all"), or those plus the ones marked
`layout=NAME`, which replace the unmarked command of the same kind and bring their own instance files.
`deployed()` follows the document: the settings file, `citygate db upgrade`, the fleet registered
(the README's step, done here in Python), `citygate broker config` with TLS, Mosquitto with the main
file's lines, then each instance as its systemd unit starts it. Only loopback addresses, free ports,
temporary directories and fresh secrets differ. Everything started is stopped on the way out.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from controller import reference
from controller.api.routes.gateways import GatewayIn, register
from controller.brokers import Mosquitto, free_port
from controller.db import Database
from controller.settings import Settings
from tests import tlscerts
from tests.controller.broker_config_rig import BROKER_USER, reachable_dir
from tests.controller.databases import scratch_url
from tests.deploy_doc_rig import DOC, Process, TlsGateway, Unit, blocks, commands, env_file

CITYGATE = Path(sys.executable).with_name("citygate")
GATEWAYS = ("gw-deploy-1", "gw-deploy-2", "gw-deploy-3")
INSTANCE_FILE = re.compile(r"/etc/citygate/([\w-]+)\.env")


class Layout:
    """What the document says for one layout: settings, instances, commands, unit, broker lines, queries."""

    def __init__(self, name: str = "all"):
        doc = blocks()
        ours = [(lang, a, body) for lang, a, body in doc if a.get("layout", "all") in ("all", name)]
        files = {a["file"]: body for _, a, body in ours if "file" in a}
        self.settings = env_file(files["/etc/citygate/citygate.env"])
        self.instances = {m.group(1): files[p] for p in files if (m := INSTANCE_FILE.fullmatch(p))
                          and m.group(1) != "citygate"
                          and next(a for _, a, _b in ours if a.get("file") == p).get("layout", "all") == name}
        main = [c for lang, a, body in doc if lang == "sh" and a.get("deploy-test") and "layout" not in a
                for c in commands(body)]
        special = [c for lang, a, body in doc if lang == "sh" and a.get("deploy-test") and a.get("layout") == name
                   for c in commands(body)]
        self.runs = [next((s for s in special if s[:3] == c[:3]), c) for c in main]
        (self.unit,) = [Unit(body) for _, a, body in doc if a.get("unit", "").endswith("/citygate@.service")]
        self.mosquitto = [line for line in files["/etc/mosquitto/mosquitto.conf"].splitlines()
                          if line.strip() and not line.startswith("#")]
        (self.leader_query,) = [body for lang, a, body in doc if lang == "sql" and a.get("leader-query")]
        watch = DOC.read_text()
        self.watched = set(re.findall(r"`(citygate_\w+)`", watch[watch.index("## 7."):]))

    def unknown_settings(self) -> set[str]:
        return {k for k in self.settings if k.removeprefix("CITYGATE_").lower() not in Settings.model_fields}


@dataclass
class Deployment:
    layout: Layout
    engine: Engine
    port: int
    ca: Path
    passwords: dict[str, str]
    procs: dict[str, Process] = field(default_factory=dict)

    def leader(self) -> str | None:
        """The document's leader query: the one holder's instance name, or None."""
        with self.engine.connect() as conn:
            rows = conn.execute(text(self.layout.leader_query.strip().rstrip(";"))).scalars().all()
        assert len(rows) <= 1, rows
        return rows[0].removeprefix("citygate-leader-") if rows else None

    def gateways(self) -> list[TlsGateway]:
        return [TlsGateway(gw, self.passwords[gw], self.port, self.ca) for gw in GATEWAYS]

    def stored(self) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(text(
                "SELECT count(*) AS records, count(DISTINCT (gateway_id, store_id, seq)) AS keys,"
                " (SELECT coalesce(sum(offered), 0) FROM call_hours WHERE gateway_id LIKE 'gw-deploy-%') AS offered"
                " FROM records WHERE gateway_id LIKE 'gw-deploy-%'")).one()._mapping)


@contextmanager
def deployed(tmp_path: Path, layout: Layout) -> Iterator[Deployment]:
    with scratch_url("postgresql", tmp_path, "deploy_doc") as db_url, reachable_dir() as base:
        certs = tlscerts.make(base / "certs")
        os.chmod(certs, 0o755)
        os.chown(certs / "server.key", 0, pwd.getpwnam(BROKER_USER).pw_gid)  # install -g mosquitto -m 0640
        os.chmod(certs / "server.key", 0o640)
        port, etc = free_port(), tmp_path / "etc"
        etc.mkdir()
        places = {"/etc/mosquitto/citygate": str(base / "citygate"),
                  "/etc/mosquitto/certs/broker.crt": str(certs / "server.crt"),
                  "/etc/mosquitto/certs/broker.key": str(certs / "server.key"),
                  "/etc/citygate/broker-ca.crt": str(certs / "ca.crt"),
                  "/opt/citygate/.venv/bin/citygate": str(CITYGATE), "/var/lib/citygate": str(tmp_path / "var"),
                  "/etc/citygate": str(etc), "--owner mosquitto": f"--owner {BROKER_USER}",
                  "broker.example.net:8883": f"127.0.0.1:{port}", "--port 8883": f"--port {port} --bind 127.0.0.1"}

        def local(s: str) -> str:
            for old, new in places.items():
                s = s.replace(old, new)
            return s

        secret_key = secrets.token_hex(32)
        settings = {k: local(v) for k, v in layout.settings.items()} | {
            "CITYGATE_DATABASE_URL": db_url, "CITYGATE_SECRET_KEY": secret_key,
            "CITYGATE_BROKER_PASSWORD": secrets.token_urlsafe(24), "CITYGATE_LISTEN_HOST": "127.0.0.1"}
        (etc / "citygate.env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        for name, body in layout.instances.items():  # one machine: a port each, as the document says
            (etc / f"{name}.env").write_text(body + f"CITYGATE_LISTEN_PORT={free_port()}\n")
        base_env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(tmp_path)}

        # production refuses the development secret: the same settings without the key
        no_key = base_env | {k: v for k, v in settings.items() if k != "CITYGATE_SECRET_KEY"}
        refused = subprocess.run([str(CITYGATE), "serve"], env=no_key, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=60)
        assert refused.returncode == 2 and "CITYGATE_SECRET_KEY" in refused.stdout + refused.stderr, refused

        passwords: dict[str, str] = {}
        for argv in layout.runs:
            argv = [str(CITYGATE)] + shlex.split(local(shlex.join(argv[1:])))
            done = subprocess.run(argv, env=base_env | settings, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
            if argv[1:3] == ["db", "upgrade"]:  # the region and the fleet, registered as an admin would
                passwords = register_fleet(db_url, secret_key)
        conf = (base / "citygate" / "citygate.conf").read_text()
        assert f"listener {port} 127.0.0.1" in conf and f"certfile {certs / 'server.crt'}" in conf

        lines = [local(line) for line in layout.mosquitto]
        assert f"include_dir {base / 'citygate'}" in lines
        extra = [line for line in lines if not line.startswith(("include_dir", "persistence"))]
        engine = create_engine(db_url)
        deployment = Deployment(layout, engine, port, certs / "ca.crt", passwords)
        unit = layout.unit
        try:
            with Mosquitto(port=port, include_dir=base / "citygate", run_as=BROKER_USER,
                           conf_extra="\n".join(extra), persistence="persistence true" in lines) as broker:
                try:
                    for name in layout.instances:
                        env = base_env | unit.environment(name, lambda p: Path(local(p)).read_text())
                        assert env["CITYGATE_BROKER_USER"] == f"citygate-controller.{name}"
                        deployment.procs[name] = Process(name, [local(a) for a in unit.argv(name, env)], env,
                                                         Path(local(unit.get("WorkingDirectory")[0])),
                                                         tmp_path / f"{name}.log", unit)
                    yield deployment
                finally:
                    for p in deployment.procs.values():
                        p.stop()
                assert "not authorised" not in broker.log().lower(), broker.log()[-3000:]
        finally:
            engine.dispose()


def register_fleet(db_url: str, secret_key: str) -> dict[str, str]:
    """The reference region and three gateways registered with their broker passwords (README's step)."""
    db = Database(db_url)
    try:
        with db.session() as s:
            reference.seed(s)
            made = {gw: register(s, GatewayIn(id=gw, city="Mariupol", services={"gsm1": "102"}, out_ports=["gsm2"]),
                                 secret_key, actor="deploy-doc") for gw in GATEWAYS}
        return {gw: m.password for gw, m in made.items()}
    finally:
        db.engine.dispose()
