"""Every console page and form against hostile input (no browser: the ASGI app in-process, SQLite and
PostgreSQL): a 4xx naming the field, never a 5xx; nothing is written without the session's CSRF token."""

from __future__ import annotations

import itertools
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import reference
from controller.auth import create_user
from controller.compiler import compile_all
from controller.models import Alert, Record
from tests.controller.databases import KINDS, scratch_database
from tests.controller.web.conftest import console_app, signed_in_client

PASSWORD = "hostile-admin-pass"
SEQS = itertools.count(1)
GETS = ["/fleet", "/fleet/{x}", "/callbacks", "/alerts"]
POSTS = ["/fleet/{x}/command", "/fleet/{x}/preview", "/callbacks/{x}/call", "/callbacks/{x}/done",
         "/callbacks/{x}/note", "/alerts/{x}/acknowledge", "/alerts/{x}/resolve", "/logout"]
FIELDS = ["op", "port", "caller", "at", "agent", "text", "back", "city", "status", "sort", "state", "gateway"]
HOSTILE = ["", "0", "-1", "9" * 30, "2147483648", "x" * 3000, "\x00", "a\x00b", "../../etc", "<script>", "%",
           "☃", "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"), "1e9", " 1", "gw-mariupol-1", "1"]


@pytest.fixture(params=KINDS, scope="module")
def client(request, tmp_path_factory):
    with scratch_database(request.param, tmp_path_factory.mktemp("hostile"), "hostile_pages") as db:
        db.upgrade()
        with db.session() as s:
            reference.seed(s)
            compile_all(s)
            create_user(s, "root", "admin", PASSWORD)
            s.add(Alert(gateway_id="gw-toretsk-1", code="x", detail="y"))
            s.add(Record(gateway_id="gw-toretsk-1", store_id="a", seq=1, kind="call", at=1765000000,
                         caller="+380671234567", outcome="callback"))
        with signed_in_client(console_app(db), "root", PASSWORD) as c:
            yield c


def _check(r, what) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:300])
    if r.status_code >= 400 and r.status_code not in (404, 405):  # an unknown path or method: FastAPI's own
        assert 'id="problem"' in r.text or 'id="error"' in r.text or '"field"' in r.text, (what, r.text[:300])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(POSTS), x=st.sampled_from(HOSTILE) | st.text(max_size=40),
       fields=st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(HOSTILE) | st.text(max_size=60), max_size=5))
def test_forms_answer_4xx_naming_the_field(client, path, x, fields):
    url = path.format(x=quote(x, safe="") or "0")
    if path == "/logout":
        fields = {**fields, "csrf": "wrong"}  # signing out for real would end the module's session
    r = client.post(url, data={"csrf": client.csrf, **fields}, follow_redirects=False)
    _check(r, (url, fields))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(GETS), x=st.sampled_from(HOSTILE) | st.text(max_size=40),
       query=st.dictionaries(st.sampled_from(FIELDS + ["desc", "next"]), st.sampled_from(HOSTILE), max_size=4))
def test_pages_answer_4xx_naming_the_parameter(client, path, x, query):
    url = path.format(x=quote(x, safe="") or "0")
    _check(client.get(url, params=query, follow_redirects=False), (url, query))


@pytest.mark.parametrize("body, kind", [(b"\xff\xfe=1", "application/x-www-form-urlencoded"),
                                        (b"a=1&" * 40, "application/x-www-form-urlencoded"),
                                        (b"a=" + b"x" * 20000, "application/x-www-form-urlencoded"),
                                        (b'{"csrf": "x"}', "application/json"), (b"", "")])
def test_bodies_that_are_no_form(client, body, kind):
    r = client.post("/alerts/1/acknowledge", content=body, headers={"Content-Type": kind} if kind else {})
    assert 400 <= r.status_code < 500 and 'id="problem"' in r.text, (r.status_code, r.text[:200])


def test_without_the_csrf_token_nothing_is_written(client):
    with client.app.state.db.session() as s:
        alert = Alert(gateway_id="gw-kramatorsk-1", code="csrf_probe", detail="")
        s.add(alert)
        s.flush()
        aid = alert.id
    for form in ({"csrf": ""}, {}, {"csrf": client.csrf + "x"}):
        r = client.post(f"/alerts/{aid}/acknowledge", data=form)
        assert r.status_code == 403 and "<code>csrf</code>" in r.text
    with client.app.state.db.session() as s:
        assert s.get(Alert, aid).acknowledged_at is None


def test_login_refuses_a_missing_token_and_foreign_next(client):
    fresh = TestClient(client.app)
    r = fresh.post("/login", data={"name": "root", "password": PASSWORD})
    assert r.status_code == 403
    r = fresh.get("/login", params={"next": "//evil.example/x"})
    token = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
    assert 'name="next" value="/fleet"' in r.text
    r = fresh.post("/login", data={"csrf": token, "name": "root", "password": PASSWORD, "next": "https://evil.example"},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/fleet"


@pytest.mark.parametrize("path, data, field", [
    ("/fleet/gw-toretsk-1/command", {"op": "format_flash"}, "commands.op"),
    ("/fleet/gw-toretsk-1/preview", {"port": "gsm1", "at": "tomorrow"}, "preview.at"),
    ("/fleet/gw-toretsk-1/preview", {"port": ""}, "preview.port"),
    ("/callbacks/1/call", {"agent": "call me"}, "call.agent"),
    ("/callbacks/1/note", {"text": "   "}, "note.text"),
    ("/callbacks/99999/done", {}, "call_id"),
    ("/alerts/abc/resolve", {}, "alert_id"),
])
def test_each_form_names_its_field_as_the_api_does(client, path, data, field):
    if path.startswith("/callbacks/1/"):  # a call-back of its own: the fuzzing above may have marked 1 done
        with client.app.state.db.session() as s:
            rec = Record(gateway_id="gw-toretsk-1", store_id="named", seq=next(SEQS),
                         kind="call", at=1765000000, caller="+380671234568", outcome="callback")
            s.add(rec)
            s.flush()
            path = path.replace("/1/", f"/{rec.id}/")
    r = client.post(path, data={"csrf": client.csrf, **data}, follow_redirects=False)
    assert 400 <= r.status_code < 500 and (f"<code>{field}</code>" in r.text or f">{field}: " in r.text), \
        (r.status_code, r.text[:400])


def test_wrong_passwords_make_the_name_wait(client):
    from controller.web import login

    fresh = TestClient(client.app)
    token = re.search(r'name="csrf" value="([^"]+)"', fresh.get("/login").text).group(1)
    try:
        codes = [fresh.post("/login", data={"csrf": token, "name": "root", "password": f"guess-{i}"}).status_code
                 for i in range(login.FAIL_LIMIT)]
        assert codes == [401] * login.FAIL_LIMIT
        r = fresh.post("/login", data={"csrf": token, "name": "root", "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 429 and "Too many wrong passwords for root" in r.text
    finally:
        login._failures.clear()
    r = fresh.post("/login", data={"csrf": token, "name": "root", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
