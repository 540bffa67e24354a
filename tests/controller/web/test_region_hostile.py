"""The Region page without a browser (the ASGI app in-process, SQLite and PostgreSQL): who may read and
edit (as the API's region routes), the CSRF token on every form, and hostile forms answered 4xx naming
the field, never 5xx, with nothing half-written."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from controller.models import Centre, City, DenyPrefix, Holiday, Menu, Service, TableVersion

USERS = {"root": "admin", "otto": "operator", "vera": "viewer", "tess": "technician"}
KIND_PATHS = ["services", "cities", "centres", "deny-prefixes", "holidays", "menus", "nothing", ""]
FIELDS = ["number", "name", "closed_on_holidays", "zone", "code", "capacity", "ring_timeout_s", "prefix", "note",
          "calendar", "date", "service_id", "city_id", "prompt", "default_option", "options", "timeout_s", "tries"]
HOSTILE = ["", "0", "-1", "9" * 30, "2147483648", "x" * 1999, "\x00", "a\x00b", "../../etc", "<script>", "%",
           "☃", "1e9", " 1", "+7", "+380629000102", "Mariupol", "region", "2026-02-30", "2026-12-25", "1", "on",
           "0=mariupol-102", "Europe/Kyiv", "Nowhere/Zone", "102", "mariupol-102"]


@pytest.fixture(scope="module")
def clients(console):
    """USERS signed in (tests/controller/web/conftest.py's `console`), on SQLite and PostgreSQL."""
    return console.state.clients


def _counts(clients) -> tuple:
    with clients["root"].app.state.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m))
                     for m in (Service, City, Centre, DenyPrefix, Holiday, Menu, TableVersion))


def test_viewers_read_operators_and_admins_edit_technicians_do_not_see_it(clients):
    for name in ("root", "otto"):
        r = clients[name].get("/region")
        assert r.status_code == 200 and 'action="/region/centres"' in r.text and "mariupol-102" in r.text
        assert '<a href="/region"' in r.text
    r = clients["vera"].get("/region")
    assert r.status_code == 200 and "mariupol-102" in r.text and "Mariupol" in r.text
    assert 'action="/region/' not in r.text and "Read-only" in r.text
    r = clients["tess"].get("/region")
    assert r.status_code == 403 and "<code>role</code>" in r.text
    assert '<a href="/region"' not in r.text, "no link to a page the role may not read"
    before = _counts(clients)
    for name in ("vera", "tess"):
        r = clients[name].post("/region/cities", data={"csrf": clients[name].csrf, "name": "Siversk",
                                                         "zone": "Europe/Kyiv"})
        assert r.status_code == 403 and "<code>role</code>" in r.text
    assert _counts(clients) == before
    r = TestClient(clients["root"].app).get("/region", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_without_the_csrf_token_nothing_is_written(clients):
    c = clients["root"]
    before = _counts(clients)
    for data in ({"csrf": ""}, {}, {"csrf": c.csrf + "x"}, {"csrf": clients["otto"].csrf}):
        r = c.post("/region/cities", data={**data, "name": "Siversk", "zone": "Europe/Kyiv"})
        assert r.status_code == 403 and "<code>csrf</code>" in r.text
        r = c.post("/region/deny-prefixes/1/delete", data=data)
        assert r.status_code == 403
    r = c.post("/region/cities", content=b'{"name": "Siversk"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 403
    assert _counts(clients) == before


def test_an_operator_adds_and_removes_as_the_api_lets_them(clients):
    c = clients["otto"]
    r = c.post("/region/cities", data={"csrf": c.csrf, "name": "Lyman", "zone": "Europe/Kyiv"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/region#cities"
    page = c.get("/region").text
    assert 'data-city="Lyman"' in page and "city Lyman added" in page
    city_id = re.search(r'/region/cities/(\d+)/delete"[^<]*>\s*<input type="hidden" name="csrf" value="[^"]+">\s*'
                        r'<button[^>]*aria-label="Remove city Lyman"', page).group(1)
    r = c.post(f"/region/cities/{city_id}/delete", data={"csrf": c.csrf}, follow_redirects=False)
    assert r.status_code == 303 and 'data-city="Lyman"' not in c.get("/region").text


@pytest.mark.parametrize("path, data, field", [
    ("/region/centres", {"code": "x-hall", "number": "+380626000111", "capacity": "-1"}, "centres.capacity"),
    ("/region/centres", {"code": "x-hall", "number": "+380626000111", "capacity": "many"}, "centres.capacity"),
    ("/region/centres", {"code": "x hall", "number": "+380626000111"}, "centres.code"),
    ("/region/centres", {"code": "x-hall", "number": "+7495000000"}, "centres.number"),
    ("/region/centres", {"code": "x-hall"}, "centres.number"),
    ("/region/centres", {"code": "mariupol-102", "number": "+380626000111"}, "centres.code"),
    ("/region/cities", {"name": "Siversk", "zone": "Mars/Olympus"}, "cities.zone"),
    ("/region/cities", {"name": "", "zone": "Europe/Kyiv"}, "cities.name"),
    ("/region/services", {"number": "10 2", "name": "x"}, "services.number"),
    ("/region/deny-prefixes", {"prefix": "7"}, "deny-prefixes.prefix"),
    ("/region/holidays", {"calendar": "region", "date": "2026-02-30"}, "holidays.date"),
    ("/region/holidays", {"calendar": "Atlantis", "date": "2026-12-25"}, "holidays.calendar"),
    ("/region/menus", {"name": "m", "service_id": "1", "prompt": "p", "default_option": "0",
                       "options": "0=nowhere"}, "menus.options.0.targets[0]"),
    ("/region/menus", {"name": "m", "service_id": "1", "prompt": "p", "default_option": "00",
                       "options": "0=mariupol-102"}, "menus.default_option"),
    ("/region/menus", {"name": "m", "service_id": "1", "prompt": "p", "default_option": "0", "tries": "9",
                       "options": "0=mariupol-102"}, "menus.tries"),
    ("/region/cities/1/delete", {}, "cities.id"),
    ("/region/centres/99999", {"code": "x"}, "id"),
    ("/region/planets", {}, "kind"),
])
def test_each_form_names_its_field_as_the_api_does(clients, path, data, field):
    c = clients["root"]
    before = _counts(clients)
    r = c.post(path, data={"csrf": c.csrf, **data}, follow_redirects=False)
    assert 400 <= r.status_code < 500 and (f">{field}: " in r.text or f"<code>{field}</code>" in r.text), \
        (r.status_code, r.text[:400])
    assert _counts(clients) == before, "a refused form writes nothing (no row, no table version)"
    if r.status_code == 422 and "/delete" not in path and path.count("/") == 2:
        name = field.split(".")[1].split("[")[0] if "." in field else field
        assert re.search(rf'name="{name}"[^>]*aria-invalid="true"', r.text), "the field is marked"
        if data.get(name) and name not in ("options", "calendar"):  # a select shows its options
            assert f'value="{data[name]}"' in r.text.replace("&#43;", "+"), "what was typed is kept"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KIND_PATHS), rid=st.sampled_from(["", "1", "0", "-1", "x", "99999", "2147483648"]),
       delete=st.booleans(),
       fields=st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(HOSTILE) | st.text(max_size=60), max_size=6))
def test_hostile_forms_answer_4xx_naming_the_field(clients, kind, rid, delete, fields):
    c = clients["root"]
    url = "/region/" + quote(kind, safe="") + (f"/{quote(rid, safe='')}" if rid else "") + \
        ("/delete" if delete and rid else "")
    if rid in ("1",) and delete:
        url = url.replace("/1/delete", "/99999/delete")  # keep the seeded rows the other examples edit
    r = c.post(url, data={"csrf": c.csrf, **fields}, follow_redirects=False)
    assert r.status_code < 500, (url, fields, r.status_code, r.text[:300])
    if r.status_code >= 400 and r.status_code not in (404, 405):
        assert 'id="problem"' in r.text or 'id="error"' in r.text, (url, r.text[:300])
    assert c.get("/region").status_code == 200, "the page still renders whatever was saved"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=st.sampled_from(["", "centres:1", "menus:1", "holidays:1", "cities:0", "x:1", "centres:x", ":",
                             "centres:99999", "services:2147483648"]) | st.text(max_size=30))
def test_the_edit_parameter_is_4xx_when_wrong(clients, edit):
    r = clients["vera"].get("/region", params={"edit": edit})
    assert r.status_code < 500, (edit, r.text[:300])


def test_edit_fills_the_form_and_saves_the_row(clients):
    c = clients["root"]
    with c.app.state.db.session() as s:
        centre = s.scalars(select(Centre).where(Centre.code == "info-505")).one()
        cid, ring = centre.id, centre.ring_timeout_s
        svc = s.scalars(select(Service).where(Service.number == "505")).one().id
    page = c.get("/region", params={"edit": f"centres:{cid}"}).text
    assert f'action="/region/centres/{cid}"' in page and 'value="info-505"' in page and "Save centre" in page
    r = c.post(f"/region/centres/{cid}", data={"csrf": c.csrf, "code": "info-505", "name": "Info desk",
                                               "number": "+380629000505", "capacity": "", "ring_timeout_s": "21"},
               follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    with c.app.state.db.session() as s:
        centre = s.get(Centre, cid)
        assert (centre.name, centre.capacity, centre.ring_timeout_s) == ("Info desk", None, 21)
        centre.ring_timeout_s = ring
    page = c.get("/region", params={"edit": f"services:{svc}"}).text
    assert re.search(r'name="closed_on_holidays" value="on" checked', page)
    r = c.post(f"/region/services/{svc}", data={"csrf": c.csrf, "number": "505", "name": "Info",
                                                "closed_on_holidays": "0"}, follow_redirects=False)
    assert r.status_code == 303
    with c.app.state.db.session() as s:
        assert s.get(Service, svc).closed_on_holidays is False
        s.get(Service, svc).closed_on_holidays = True


def test_a_menu_saved_from_the_page_keeps_what_the_form_does_not_show(clients):
    c = clients["root"]
    with c.app.state.db.session() as s:
        svc = s.scalars(select(Service).where(Service.number == "505")).one().id
    r = c.post("/region/menus", data={"csrf": c.csrf, "name": "info-menu", "service_id": str(svc), "city_id": "",
                                      "prompt": "info-menu-v1", "default_option": "0",
                                      "options": "0=info-505:Operator\n2=mariupol-102,mariupol-reserve:Police"},
               follow_redirects=False)
    assert r.status_code == 303, r.text[:400]
    with c.app.state.db.session() as s:
        m = s.scalars(select(Menu).where(Menu.name == "info-menu")).one()
        mid = m.id
        m.options = {**m.options, "2": {**m.options["2"], "strategy": "round_robin",
                                        "fallback": {"action": "forward", "target": "info-505"}}}
    page = c.get("/region", params={"edit": f"menus:{mid}"}).text
    assert "2=mariupol-102,mariupol-reserve:Police" in page
    r = c.post(f"/region/menus/{mid}", data={"csrf": c.csrf, "name": "info-menu", "service_id": str(svc),
                                              "city_id": "", "prompt": "info-menu-v2", "default_option": "0",
                                              "options": "0=info-505:Operator\n2=mariupol-102:Police"},
               follow_redirects=False)
    assert r.status_code == 303, r.text[:400]
    with c.app.state.db.session() as s:
        m = s.get(Menu, mid)
        assert m.prompt == "info-menu-v2" and m.options["2"]["targets"] == ["mariupol-102"]
        assert m.options["2"]["strategy"] == "round_robin" and m.options["2"]["fallback"]["target"] == "info-505"
    r = c.post(f"/region/menus/{mid}/delete", data={"csrf": c.csrf}, follow_redirects=False)
    assert r.status_code == 303
