"""Scheduled reports and the privacy duty as the leader runs them (SQLite and PostgreSQL): the last whole local
period written to a folder (CSV + HTML) once, POSTed to a webhook on a loopback HTTP server once, retried with
a growing wait when it fails; `citygate report schedule run` and `citygate privacy purge` do the same now."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from controller.cli import app
from controller.models import Record
from controller.services import report_schedule
from controller.services.report_schedule import WEBHOOK_BACKOFF_S, WEBHOOK_TRIES, ReportDuties
from controller.settings import Settings, get_settings
from tests.controller.databases import KINDS, scratch_database, scratch_url
from tests.controller.report_data import CALLS, store_calls

KYIV = ZoneInfo("Europe/Kyiv")
NOW = datetime(2025, 7, 16, 12, 0, tzinfo=KYIV).timestamp()  # a Wednesday
runner = CliRunner()


class Hook:
    """A loopback webhook: answers each POST with the next of `statuses` (then 200) and keeps the bodies."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 20))
                status = hook.statuses.pop(0) if hook.statuses else 200
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reports"
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-webhook", daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture(scope="module", params=KINDS)
def db(request, tmp_path_factory):
    with scratch_database(request.param, tmp_path_factory.mktemp("db"), "report_schedule") as db:
        db.upgrade()
        with db.session() as s:
            store_calls(s)
        yield db


def _settings(tmp_path, url, **more) -> Settings:
    return Settings(report_schedule="daily, weekly, monthly", report_dir=tmp_path, report_webhook_url=url,
                    report_service_level_s=5, **more)


def test_scheduled_report_written_once_and_posted_once(db, tmp_path, hook):
    duties = ReportDuties(_settings(tmp_path, hook.url))
    made = duties.tick(db, NOW)
    assert sorted(r["name"] for r in made) == ["daily-2025-07-15", "monthly-2025-06", "weekly-2025-07-07"]
    assert all(r["sent"] == 200 for r in made)
    rows = list(csv.reader(io.StringIO((tmp_path / "daily-2025-07-15.csv").read_text())))
    assert rows[0][:3] == ["Period", "City", "Offered"] and rows[0][7] == "Service level (5 s)"
    assert rows[1:] == [["2025-07-15", "Mariupol", "2", "2", "0", "0", "100.0%", "50.0%", "150", "75.0"],
                        ["2025-07-15", "Toretsk", "2", "1", "0", "1", "50.0%", "50.0%", "10", "10.0"],
                        ["Total", "", "4", "3", "0", "1", "75.0%", "50.0%", "160", "53.3"]]
    html = (tmp_path / "daily-2025-07-15.html").read_text()
    assert "<td>Toretsk</td>" in html and "Europe/Kyiv" in html
    by_name = {b["name"]: b for b in hook.bodies}
    assert set(by_name) == {"daily-2025-07-15", "weekly-2025-07-07", "monthly-2025-06"}
    daily = by_name["daily-2025-07-15"]
    assert (daily["period"], daily["from"], daily["to"], daily["totals"]["offered"]) == ("daily", "2025-07-15",
                                                                                          "2025-07-15", 4)
    assert daily["csv"].replace("\r\n", "\n") == (tmp_path / "daily-2025-07-15.csv").read_text().replace("\r\n", "\n")
    assert by_name["weekly-2025-07-07"]["to"] == "2025-07-13" and by_name["monthly-2025-06"]["totals"]["offered"] == 0
    # the next tick (or a new leader: the folder remembers) makes and sends nothing again
    assert duties.tick(db, NOW + 60) == [] and ReportDuties(_settings(tmp_path, hook.url)).tick(db, NOW + 120) == []
    assert len(hook.bodies) == 3


def test_scheduled_report_webhook_retried_with_a_growing_wait(db, tmp_path, hook):
    hook.statuses = [500, 503]
    duties = ReportDuties(Settings(report_schedule="daily", report_dir=tmp_path, report_webhook_url=hook.url))
    assert [r["sent"] for r in duties.tick(db, NOW)] == [None]
    assert (tmp_path / "daily-2025-07-15.csv").exists() and not (tmp_path / "daily-2025-07-15.sent").exists()
    assert duties.tick(db, NOW + WEBHOOK_BACKOFF_S - 1) == []  # waits
    assert [r["sent"] for r in duties.tick(db, NOW + WEBHOOK_BACKOFF_S)] == [None]  # 503
    assert duties.tick(db, NOW + WEBHOOK_BACKOFF_S * 3 - 1) == []  # the wait doubled
    assert [r["sent"] for r in duties.tick(db, NOW + WEBHOOK_BACKOFF_S * 3)] == [200]
    assert (tmp_path / "daily-2025-07-15.sent").exists() and len(hook.bodies) == 1


def test_scheduled_report_webhook_gives_up_after_its_tries(db, tmp_path, hook):
    hook.statuses = [500] * (WEBHOOK_TRIES + 1)
    duties = ReportDuties(Settings(report_schedule="daily", report_dir=tmp_path, report_webhook_url=hook.url))
    now = NOW
    for _ in range(WEBHOOK_TRIES + 2):
        duties.tick(db, now)
        now += WEBHOOK_BACKOFF_S * 2 ** WEBHOOK_TRIES
    assert len(hook.statuses) == 1 and hook.bodies == []  # WEBHOOK_TRIES attempts, then no more


def test_scheduled_reports_are_off_by_default(db, tmp_path):
    duties = ReportDuties(Settings(data_dir=tmp_path))
    assert duties.tick(db, NOW) == [] and not (tmp_path / "reports").exists()
    with pytest.raises(ValueError):
        Settings(report_schedule="hourly")
    with pytest.raises(ValueError):
        Settings(report_webhook_url="file:///etc/passwd")
    assert report_schedule.last_period("monthly", datetime(2025, 1, 3).date())[0] == "monthly-2024-12"


def test_privacy_purge_as_a_leader_duty_keeps_the_counts(db, tmp_path):
    duties = ReportDuties(Settings(caller_retention_days=30, data_dir=tmp_path))
    with db.session() as s:
        offered = s.scalar(select(func.count()).select_from(Record).where(Record.kind == "call"))
    duties.tick(db, CALLS[3][1] + 30 * 86400)  # 30 days after 2025-07-15 10:10 local: calls 1-3 are older
    with db.session() as s:
        numbers = dict(s.execute(select(Record.at, Record.caller).where(Record.kind == "call")).all())
        assert [numbers[c[1]] for c in CALLS[:3]] == [None, None, None] and numbers[CALLS[3][1]] == CALLS[3][3]
        assert s.scalar(select(func.count()).select_from(Record).where(Record.kind == "call")) == offered


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    with scratch_url("sqlite", tmp_path) as url:
        monkeypatch.setenv("CITYGATE_DATABASE_URL", url)
        monkeypatch.setenv("CITYGATE_BROKER", "embedded")
        get_settings.cache_clear()
        from controller.db import Database

        db = Database(url)
        db.upgrade()
        with db.session() as s:
            store_calls(s)
        db.engine.dispose()
        yield url
        get_settings.cache_clear()


def test_cli_report_schedule_run_and_privacy_purge(cli_db, tmp_path, hook, monkeypatch):
    monkeypatch.setenv("CITYGATE_REPORT_WEBHOOK_URL", hook.url)
    get_settings.cache_clear()
    r = runner.invoke(app, ["report", "schedule", "run", "--period", "monthly", "--dir", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    name = report_schedule.last_period("monthly", datetime.now(KYIV).date())[0]  # the last month, whatever today is
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(made) == 3 and made[0].endswith(".csv") and made[2].endswith(".sent"), made
    assert "sent: HTTP 200" in r.output and len(hook.bodies) == 1 and hook.bodies[0]["period"] == "monthly"
    assert hook.bodies[0]["name"] == name and made[0] == f"{name}.csv"
    r = runner.invoke(app, ["report", "schedule", "run", "--period", "hourly"])
    assert r.exit_code == 2 and "period" in r.output
    r = runner.invoke(app, ["privacy", "purge"])
    assert r.exit_code == 2 and "no retention period" in r.output
    r = runner.invoke(app, ["privacy", "purge", "--days", "-1"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["privacy", "purge", "--days", "1"])
    assert r.exit_code == 0 and "numbers cleared from 9 records and 1 outbound requests" in r.output, r.output
    r = runner.invoke(app, ["report", "milestones", "--service", "505", "--every", "3"])
    assert r.exit_code == 0 and [m["n"] for m in json.loads(r.output)["milestones"]] == [3, 6]
    r = runner.invoke(app, ["report", "year", "--service", "505", "--year", "2025"])
    assert r.exit_code == 0 and json.loads(r.output)["totals"]["offered"] == 6
    r = runner.invoke(app, ["report", "year", "--service", "505", "--year", "1999"])
    assert r.exit_code == 2 and "year" in r.output


def test_scheduled_report_is_a_duty_of_citygate_serve(tmp_path, hook):
    """`citygate serve`'s leader makes yesterday's report within a few duty ticks of starting, and sends it."""
    from controller.brokers import Mosquitto, free_port
    from controller.service import ControllerService
    from tests.conditions import until

    with Mosquitto() as broker:
        service = ControllerService(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", broker=broker.url,
                                             listen_port=free_port(), report_schedule="daily",
                                             report_dir=tmp_path / "reports", report_webhook_url=hook.url)).start()
        try:
            sent = until(lambda: list((tmp_path / "reports").glob("daily-*.sent")), 90, "yesterday's report sent")
        finally:
            service.stop()
    assert len(sent) == 1 and sent[0].with_suffix(".csv").exists() and sent[0].with_suffix(".html").exists()
    assert [b["period"] for b in hook.bodies] == ["daily"]
