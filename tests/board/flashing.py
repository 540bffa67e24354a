"""Helpers of the board tests: the real CLI as a subprocess, bundles signed as the controller signs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from controller import bundles, reference
from controller.brokers import free_port

CITYGATE = str(Path(sys.executable).with_name("citygate"))
GW, PROFILE = "gw-toretsk-1", reference.PROFILE
KYIV_2016 = 1469440800  # the emulated network's clock: 2016-07-25 13:00 Kyiv


def citygate(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([CITYGATE, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, COLUMNS="200", **(env or {})))


def offline_bundle(tmp_path: Path, gateway: str = GW, profile: str = PROFILE) -> tuple[Path, dict]:
    """A bundle signed as the controller signs one, for a broker nobody listens on."""
    cfg = {"id": gateway, "broker": f"mqtt://127.0.0.1:{free_port()}", "user": gateway, "profile": profile,
           "key": reference.gateway_key(gateway), "password": "pw"}
    doc = bundles.make(cfg, json.dumps(reference.table(gateway)).encode(), "test-secret")
    path = tmp_path / f"{gateway}-{profile}.bundle"
    bundles.write(path, doc)
    return path, doc


def flash(port: str, bundle: Path, build: Path, *more: str) -> subprocess.CompletedProcess:
    return citygate("flash", "--port", port, "--bundle", str(bundle), "--build", str(build), *more)


def flashed(port: str, bundle: Path, build: Path) -> dict:
    r = flash(port, bundle, build, "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout)
