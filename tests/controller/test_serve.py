"""`citygate serve` as an admin runs it: up on its port, and Ctrl-C (SIGINT to the terminal's whole
process group) stops it with every process it started, the ingest worker included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from controller.brokers import free_port

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float) -> str | None:
    """None once /healthz answers 200; else the last thing it answered (the process died, or the deadline)."""
    deadline, last = time.monotonic() + timeout, "nothing"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            if r.status_code == 200:
                print(f"healthy after {timeout - (deadline - time.monotonic()):.1f} s")
                return None
            last = f"{r.status_code} {r.text[:500]}"
        except httpx.HTTPError as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.3)
    return last if proc.poll() is None else f"{last}; serve exited with {proc.returncode}"


def test_ctrl_c_stops_serve_and_its_ingest_worker(tmp_path):
    port, broker_port = free_port(), free_port()
    while broker_port == port:  # two free ports, not one twice
        broker_port = free_port()
    env = dict(os.environ, CITYGATE_DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}", CITYGATE_LISTEN_PORT=str(port),
               CITYGATE_BROKER_PORT=str(broker_port))
    citygate = Path(sys.executable).with_name("citygate")
    proc = subprocess.Popen([str(citygate), "serve"], env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        last = wait_healthy(proc, port, 120)
        if last is not None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"serve was not healthy within 120 s (last answer: {last})\n{proc.communicate(timeout=30)[0]}")
        workers = [c for c in children(proc.pid)
                   if b"controller.ingest.worker" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 1, "one ingest worker per controller"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        out, _ = proc.communicate(timeout=90)  # it stops the broker, the bridge and the worker in turn
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out
    assert "stopping" in out
    assert "Traceback" not in out, out
    assert not alive(workers[0]), "the ingest worker outlived the controller"
