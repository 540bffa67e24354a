"""`citygate demo` end to end: broker, controller, one real-firmware board per city, traffic, the page."""

import time

import httpx
import pytest
from rich.console import Console
from sqlalchemy import func, select

from controller.brokers import free_port
from controller.demo import Demo
from controller.models import Gateway, Record

pytestmark = pytest.mark.slow


def test_demo_runs_calls_through_every_city_and_stops_cleanly(tmp_path):
    demo = Demo(tmp_path / "demo", free_port(), rate_per_min=40, console=Console(width=200))
    try:
        demo.start()
        base = demo.service.url
        headers = {"Authorization": f"Bearer {demo.token}"}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with demo.service.db.session() as s:
                per_gw = dict(s.execute(select(Record.gateway_id, func.count()).where(Record.kind == "call")
                                        .group_by(Record.gateway_id)).all())
            if len(per_gw) == 4 and min(per_gw.values()) >= 2:
                break
            time.sleep(1)
        assert len(per_gw) == 4 and min(per_gw.values()) >= 2, per_gw
        with demo.service.db.session() as s:  # the boards' clocks run with the wall clock, none frozen
            stamps = s.execute(select(Record.gateway_id, Record.at, Record.received_at)
                               .where(Record.kind == "call")).all()
        late = [(gw, at, rx) for gw, at, rx in stamps if not rx - 120 <= at <= rx + 5]
        assert not late, f"call records stamped away from the wall clock (gateway, start, received): {late[:5]}"
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200 and "citygate" in page.text
        with httpx.Client(base_url=base, timeout=10) as browser:  # the console: `login: admin / <password>`
            form = browser.get("/login").text
            csrf = form.split('name="csrf" value="')[1].split('"')[0]
            signed = browser.post("/login", data={"csrf": csrf, "name": "admin", "password": demo.password})
            assert signed.status_code == 303 and signed.headers["location"] == "/fleet", signed.text[:300]
            assert all(gw in browser.get("/fleet").text for gw in demo.rigs)
        assert httpx.get(base + "/api/v1/overview", timeout=10).status_code == 401
        overview = httpx.get(base + "/api/v1/overview", headers=headers, timeout=10).json()
        assert {g["id"] for g in overview["gateways"] if g["online"]} == set(demo.rigs)
        assert sum(c["offered"] for c in overview["cities"]) >= 8
        gws = httpx.get(base + "/api/v1/gateways", headers=headers, timeout=10).json()["data"]
        assert all(g["applied_version"] == g["desired_version"] == 1 for g in gws)
        _every_tool_reaches_the_demo(demo)
        trail = httpx.get(base + "/api/v1/audit", headers=headers, timeout=10).json()["data"]
        assert {(t["gateway_id"], t["actor"]) for t in trail} == {(gw, "demo") for gw in demo.rigs}  # passwords given
    finally:
        demo.stop()
    assert all(not rig.running for rig in demo.rigs.values()), "a board survived the stop"
    assert demo.service.bridge.worker.proc.poll() is not None, "the ingest worker survived the stop"
    with pytest.raises(httpx.HTTPError):
        httpx.get(demo.service.url + "/healthz", timeout=2)
    with demo.service.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Gateway)) == 4


def test_demo_restarts_on_its_data_and_refuses_a_second_demo_there(tmp_path):
    """`--data DIR` a second time: the kept flash images follow the new broker port, every board comes back;
    a demo already running on DIR makes another one refuse in one line, and a temporary demo cleans up."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    data = tmp_path / "kept"
    first = Demo(data, free_port(), rate_per_min=1, console=Console(width=200))
    try:
        first.start()
        first_port = first.service.broker_url
    finally:
        first.stop()
    demo = Demo(data, free_port(), rate_per_min=1, console=Console(width=200))
    try:
        demo.start()
        assert demo.service.broker_url != first_port
        with demo.service.db.session() as s:  # start() waited for them; the flags are the bridge's view
            online = {g.id for g in s.scalars(select(Gateway)) if g.online and g.applied_version}
        assert online == set(demo.rigs), f"only {sorted(online)} came back on the new broker"
        citygate = str(Path(sys.executable).with_name("citygate"))
        second = subprocess.run([citygate, "demo", "--data", str(data), "--duration", "1"], capture_output=True,
                                text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
        assert second.returncode == 2, second.stdout + second.stderr
        assert "another demo" in second.stdout and "Traceback" not in second.stdout + second.stderr
        assert len(second.stdout.strip().splitlines()) == 1, second.stdout
    finally:
        demo.stop()
    temporary = Demo(None, free_port(), rate_per_min=1, console=Console(width=200))
    temporary.stop()
    assert not temporary.data_dir.exists(), "a temporary demo's folder is deleted at its stop"


def _every_tool_reaches_the_demo(demo):
    """The lines the demo prints, pasted into a shell: the CLI, curl and the stock mosquitto_sub reach it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    lines = demo.reach_lines()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", COLUMNS="200")
    exports = "\n".join(line for line in lines if line.startswith("export "))
    for command, expect in ((next(line for line in lines if line.startswith("curl ")), '"gw-toretsk-1"'),
                            ("citygate gateway list", "gw-sloviansk-1"),
                            ("citygate rollout impact", "no routing decision changes"),
                            ("citygate rollout start --canary gw-toretsk-1 --wait 60", "rollout 1: done")):
        out = subprocess.run(["bash", "-c", exports + "\n" + command], capture_output=True, text=True, env=env,
                             timeout=60)
        assert out.returncode == 0 and expect in out.stdout, (command, out.stdout, out.stderr)
    sub = next(line for line in lines if line.startswith("mosquitto_sub ")).split("   #")[0]
    out = subprocess.run(["bash", "-c", sub + " -C 2 -W 30"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.count("citygate/v1/gw/") == 2, (out.stdout, out.stderr)
