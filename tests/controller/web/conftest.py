"""The console in a real browser: Playwright driving Debian's Chromium (launched by its path; browsers are
never downloaded) against a controller with data: real Mosquitto, SQLite, the reference deployment, one
emulated board (gw-mariupol-1, the real firmware, as tests/controller/board_world.py starts it) online with
its table applied, a call-back waiting and an alert open. Screenshots of every page go to
build/screenshots/ (kept as the run's artifacts).

And the console without a browser (the ASGI app in-process): `signed_in_client`, and the `console` fixture,
the module's USERS signed in on the reference deployment, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import re
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller import reference
from controller.api.app import create_app
from controller.auth import create_user
from controller.compiler import compile_all
from controller.ingest.records import write_batch
from controller.models import Alert, Gateway, Record
from controller.web import router
from protocols import messages
from tests.controller.board_world import GW, PROFILE, board, controller, gateway, roll_out, seed  # noqa: F401 (GW, PROFILE: for the browser tests)
from tests.controller.databases import KINDS, scratch_database

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"
AGENT = "+380629000505"  # the operator's desk phone
PASSWORDS = {"ann": "ann-admin-pass", "otto": "otto-operator-pass", "vera": "vera-viewer-pass",
             "tess": "tess-technician-pass"}
ROLES = {"ann": "admin", "otto": "operator", "vera": "viewer", "tess": "technician"}


BROWSER = [pytest.mark.slow,
           pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (.ci/run installs it)")]


class World:
    def __init__(self, service, rig):
        self.service, self.rig = service, rig
        self.url = service.url
        self._seq = 100

    def gateway(self) -> Gateway:
        return gateway(self.service)

    def callback(self, caller: str, minutes_ago: int = 15) -> int:
        """A call nobody could take, as the board would have recorded it: a call-back in the queue."""
        self._seq += 1
        with self.service.db.session() as s:
            write_batch(s, [(GW, "events", messages.events("st-browser", [messages.call_record(
                self._seq, int(time.time()) - 60 * minutes_ago, "gsm1", caller, "police-102", "callback", None, 2,
                50, 0, "all_busy")]))], {"records": 0, "duplicates": 0})
            return s.scalars(select(Record.id).where(Record.store_id == "st-browser", Record.seq == self._seq)).one()

    def alert(self, code: str, detail: str, gateway: str | None = "gw-toretsk-1") -> int:
        with self.service.db.session() as s:
            a = Alert(gateway_id=gateway, code=code, detail=detail)
            s.add(a)
            s.flush()
            return a.id


@pytest.fixture(scope="package")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    # the rules every hour, not every 30 s: the alerts tests open by hand (on gw-toretsk-1, which no rule
    # judges: never seen) would be resolved by the next evaluation, under a slow page load mid-test
    with controller(tmp, alert_every_s=3600) as service:
        with service.db.session() as s:
            key = seed(s, out_ports=["gsm2"])
            compile_all(s)  # every gateway has its table compiled; only gw-mariupol-1 gets it rolled out
            for name, role in ROLES.items():
                create_user(s, name, role, PASSWORDS[name])
        with board(service, key, tmp) as rig:
            rig.network.destination(AGENT, answer_after_s=0.4, talk_s=3)
            rig.power_on()
            roll_out(service, ready=lambda gw: bool((gw.state or {}).get("ports")), version=1)
            yield World(service, rig)


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def sign_in(browser, world, name: str):
    """A new browser context signed in as `name`; returns its page (on the fleet)."""
    page = browser.new_context(viewport={"width": 1360, "height": 860}).new_page()
    page.goto(f"{world.url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url("**/fleet")
    return page


def download_csv(page, selector: str, path: Path) -> tuple[str, list[list[str]]]:
    """Click the link `selector` that downloads a CSV; the name the browser was given and the file's rows
    (the file kept at `path`)."""
    with page.expect_download() as download:
        page.click(selector)
    download.value.save_as(path)
    with path.open(newline="", encoding="utf-8") as f:
        return download.value.suggested_filename, list(csv.reader(f))


def shot(page, name: str) -> Path:
    """A full-page screenshot kept under build/screenshots/ (gitignored: the run's artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_app(db, **kwargs):
    """The API and the console's pages on `db`, as controller.service serves them (create_app's `kwargs`)."""
    app = create_app(db, **kwargs)
    app.include_router(router)
    return app


def signed_in_client(app, name: str, password: str) -> TestClient:
    """A client signed in to the console as `name` through the sign-in form; `.csrf` is its session's token."""
    c = TestClient(app)
    r = c.post("/login", data={"csrf": CSRF.search(c.get("/login").text).group(1), "name": name,
                               "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    c.csrf = CSRF.search(c.get("/fleet").text).group(1)
    return c


def console_password(name: str) -> str:
    return f"{name}-console-pass"


@pytest.fixture(params=KINDS, scope="module")
def console(request, tmp_path_factory):
    """The console on a scratch database of each kind (SQLite, PostgreSQL) with the reference deployment
    compiled and the test module's USERS ({name: role}, password `console_password(name)`), each signed in:
    the app, its clients in `app.state.clients` ({name: TestClient with .csrf})."""
    label = request.module.__name__.rpartition(".")[2]
    with scratch_database(request.param, tmp_path_factory.mktemp(label), label) as db:
        db.upgrade()
        with db.session() as s:
            reference.seed(s)
            compile_all(s)
            for name, role in request.module.USERS.items():
                create_user(s, name, role, console_password(name))
        app = console_app(db)
        with TestClient(app):
            app.state.clients = {name: signed_in_client(app, name, console_password(name))
                                 for name in request.module.USERS}
            yield app
            for c in app.state.clients.values():
                c.close()
