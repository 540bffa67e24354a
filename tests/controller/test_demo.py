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
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200 and "citygate" in page.text
        assert httpx.get(base + "/api/v1/overview", timeout=10).status_code == 401
        overview = httpx.get(base + "/api/v1/overview", headers=headers, timeout=10).json()
        assert {g["id"] for g in overview["gateways"] if g["online"]} == set(demo.rigs)
        assert sum(c["offered"] for c in overview["cities"]) >= 8
        gws = httpx.get(base + "/api/v1/gateways", headers=headers, timeout=10).json()["data"]
        assert all(g["applied_version"] == g["desired_version"] == 1 for g in gws)
    finally:
        demo.stop()
    assert all(not rig.running for rig in demo.rigs.values()), "a board survived the stop"
    assert demo.service.bridge.worker.proc.poll() is not None, "the ingest worker survived the stop"
    with pytest.raises(httpx.HTTPError):
        httpx.get(demo.service.url + "/healthz", timeout=2)
    with demo.service.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Gateway)) == 4
