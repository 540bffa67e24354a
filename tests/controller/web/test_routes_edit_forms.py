"""The Routes page's forms without a browser (the ASGI app in-process; SQLite and PostgreSQL): admins edit,
everyone else reads; a refused edit is a 4xx naming the API's field next to the input, the form as typed,
nothing kept; no CSRF token, nothing written; hostile forms and parameters are 4xx, never 5xx."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from controller.compiler import latest_table
from controller.models import Route, TableVersion

USERS = {"root": "admin", "olga": "operator", "vic": "viewer", "tom": "technician"}
FIELDS = ["route_id", "name", "service", "targets", "strategy", "hours", "caller", "fallback", "after_hours",
          "valid_from", "valid_until", "gateway", "port", "caller", "at", "canary", "city"]
HOSTILE = ["", "0", "-1", "9" * 30, "2147483648", "x" * 3000, "\x00", "a\x00b", "../../etc", "<script>", "%", "☃",
           "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"), "new", "1", "102", "mariupol-102",
           "forward", "forward nowhere", "12345 08:00-18:00", "8 25:00-26:00", "round_robin", "gsm1",
           "gw-mariupol-1", "2016-07-21T00:00:00Z", "99999999999999999999"]


@pytest.fixture(scope="module")
def app(console):
    """USERS signed in, in `app.state.clients` (tests/controller/web/conftest.py's `console`), on SQLite and
    PostgreSQL."""
    return console


def route_id(app, city: str, name: str) -> int:
    with app.state.db.session() as s:
        return s.scalars(select(Route.id).join(Route.city).where(Route.name == name)
                         .where(Route.city.has(name=city))).one()


def versions(app) -> int:
    with app.state.db.session() as s:
        return s.scalar(select(func.count()).select_from(TableVersion))


def police_form(app, c: TestClient, **changes) -> dict:
    form = {"csrf": c.csrf, "city": "Kramatorsk", "route_id": str(route_id(app, "Kramatorsk", "police-102")),
            "name": "police-102", "service": "102", "targets": "mariupol-102, mariupol-reserve",
            "strategy": "sequential", "hours": "", "caller": "", "fallback": "callback", "after_hours": "",
            "valid_from": "", "valid_until": ""}
    return form | changes


def field_error(html: str, name: str) -> str:
    m = re.search(rf'<label class="has-error" data-field="{name}">.*?<span class="field-error" id="error-{name}"'
                  rf'[^>]*>(.*?)</span>', html, re.S)
    return m.group(1) if m else ""


def test_a_mistake_names_the_field_keeps_the_form_and_keeps_nothing(app):
    c = app.state.clients["root"]
    before = versions(app)
    r = c.post("/routes/save", data=police_form(app, c, targets="mariupol-102, mariupol-99"), follow_redirects=False)
    assert r.status_code == 422
    assert field_error(r.text, "targets") == "routes.targets[1]: names no call centre: &#34;mariupol-99&#34;"
    assert 'value="mariupol-102, mariupol-99"' in r.text, "the form as typed"
    r = c.post("/routes/save", data=police_form(app, c, hours="12345 08:00-25:00"), follow_redirects=False)
    assert r.status_code == 422 and field_error(r.text, "hours").startswith("routes.hours[0].end: ")
    r = c.post("/routes/save", data=police_form(app, c, fallback="forward"), follow_redirects=False)
    assert r.status_code == 422 and field_error(r.text, "fallback").startswith("routes.fallback: ")
    r = c.post("/routes/save", data=police_form(app, c, name="info-505"), follow_redirects=False)
    assert r.status_code == 409 and field_error(r.text, "name").startswith("routes.name: ")
    assert versions(app) == before, "a refused edit compiles nothing"
    with app.state.db.session() as s:
        assert s.get(Route, route_id(app, "Kramatorsk", "police-102")).targets == ["mariupol-102", "mariupol-reserve"]


def test_an_admin_saves_and_the_gateway_gets_a_new_compiled_table(app):
    c = app.state.clients["root"]
    with app.state.db.session() as s:
        old = latest_table(s, "gw-kramatorsk-1").version
    r = c.post("/routes/save", data=police_form(app, c, targets="mariupol-reserve → mariupol-102",
                                                 strategy="round_robin"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/routes?city=Kramatorsk")
    with app.state.db.session() as s:
        route = s.get(Route, route_id(app, "Kramatorsk", "police-102"))
        assert (route.targets, route.strategy) == (["mariupol-reserve", "mariupol-102"], "round_robin")
        assert latest_table(s, "gw-kramatorsk-1").version == old + 1
    page = c.get("/routes?city=Kramatorsk").text
    assert 'data-name="police-102 (gsm1)"' in page or "whole table" in page
    r = c.post("/routes/save", data=police_form(app, c, route_id="new", name="police-102-night",
                                                 hours="1234567 22:00-06:00", caller="+38067"),
               follow_redirects=False)
    assert r.status_code == 303
    rid = route_id(app, "Kramatorsk", "police-102-night")
    r = c.post("/routes/delete", data={"csrf": c.csrf, "city": "Kramatorsk", "route_id": str(rid)},
               follow_redirects=False)
    assert r.status_code == 303
    with app.state.db.session() as s:
        assert s.get(Route, rid) is None


@pytest.mark.parametrize("name", ["olga", "vic", "tom"])
def test_others_read_but_neither_edit_nor_roll_out(app, name):
    c = app.state.clients[name]
    rid = route_id(app, "Sloviansk", "police-102")
    page = c.get(f"/routes?city=Sloviansk&edit={rid}")
    assert page.status_code == 200 and 'data-route="police-102"' in page.text
    assert "route-form" not in page.text and "rollout-form" not in page.text and "Add a route" not in page.text
    assert "route-preview" in page.text, "everyone who reads may preview"
    before = versions(app)
    for path, data in (("/routes/save", police_form(app, c, city="Sloviansk", route_id=str(rid))),
                       ("/routes/delete", {"city": "Sloviansk", "route_id": str(rid)}),
                       ("/routes/rollout", {"city": "Sloviansk"})):
        r = c.post(path, data={"csrf": c.csrf, **data}, follow_redirects=False)
        assert r.status_code == 403 and "<code>role</code>" in r.text, (path, r.status_code)
    assert versions(app) == before
    r = c.post("/routes/preview", data={"csrf": c.csrf, "city": "Sloviansk", "gateway": "gw-sloviansk-1",
                                        "port": "gsm1", "caller": "+380671234567", "at": "2016-07-25T14:00"})
    assert r.status_code == 200 and "route police-102" in r.text


def test_without_the_csrf_token_nothing_is_written(app):
    c = app.state.clients["root"]
    rid = route_id(app, "Toretsk", "police-102")
    before = versions(app)
    for token in ("", c.csrf + "x", None):
        for path, data in (("/routes/save", police_form(app, c, city="Toretsk", route_id=str(rid), targets="x")),
                           ("/routes/delete", {"city": "Toretsk", "route_id": str(rid)}),
                           ("/routes/rollout", {"city": "Toretsk"}), ("/routes/preview", {"city": "Toretsk"})):
            data = {k: v for k, v in data.items() if k != "csrf"} | ({} if token is None else {"csrf": token})
            r = c.post(path, data=data, follow_redirects=False)
            assert r.status_code == 403 and "<code>csrf</code>" in r.text, (path, r.status_code)
    assert versions(app) == before
    with app.state.db.session() as s:
        assert s.get(Route, rid) is not None


def test_signed_out_the_page_asks_to_sign_in_and_the_watch_says_401(app):
    fresh = TestClient(app)
    r = fresh.get("/routes", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = fresh.get("/routes/rollouts/1")
    assert r.status_code == 401 and r.json()["reason"]
    assert fresh.get("/static/routes.js").headers["content-type"].startswith("text/javascript")


def test_a_rollout_without_a_broker_is_503_naming_it(app):
    c = app.state.clients["root"]
    r = c.post("/routes/rollout", data={"csrf": c.csrf, "city": "Mariupol", "canary": "1"}, follow_redirects=False)
    assert r.status_code == 503 and "<code>bridge</code>" in r.text
    r = c.post("/routes/rollout", data={"csrf": c.csrf, "city": "Mariupol", "canary": "yes"}, follow_redirects=False)
    assert r.status_code == 422 and "<code>canary</code>" in r.text


def _check(r, what) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert ('id="problem"' in r.text or 'class="field-error"' in r.text or '"reason"' in r.text), \
            (what, r.text[:300])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/routes/save", "/routes/delete", "/routes/preview", "/routes/rollout"]),
       city=st.sampled_from(["Sloviansk", "Atlantis", ""]) | st.sampled_from(HOSTILE),
       fields=st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(HOSTILE) | st.text(max_size=60), max_size=8))
def test_hostile_forms_are_4xx_naming_the_field(app, path, city, fields):
    c = app.state.clients["root"]
    app.state.bridge = None  # a rollout that got through its checks is then 503 (no broker here): not bad input
    r = c.post(path, data={"city": city, **fields, "csrf": c.csrf}, follow_redirects=False)
    if path == "/routes/rollout" and r.status_code == 503:
        assert "<code>bridge</code>" in r.text
        return
    _check(r, (path, city, fields))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=st.sampled_from(HOSTILE) | st.text(max_size=40),
       query=st.dictionaries(st.sampled_from(["city", "edit", "rollout"]),
                             st.sampled_from(HOSTILE) | st.text(max_size=30), max_size=3))
def test_hostile_parameters_are_4xx(app, x, query):
    c = app.state.clients["root"]
    _check(c.get("/routes", params=query, follow_redirects=False), query)
    _check(c.get(f"/routes/rollouts/{quote(x, safe='') or '0'}", follow_redirects=False), x)


@pytest.mark.parametrize("changes, api_body", [
    ({"targets": "mariupol-102, mariupol-99"}, {"targets": ["mariupol-102", "mariupol-99"]}),
    ({"hours": "12345 08:00-25:00"}, {"hours": [{"days": "12345", "start": "08:00", "end": "25:00"}]}),
    ({"hours": "12389 08:00-18:00"}, {"hours": [{"days": "12389", "start": "08:00", "end": "18:00"}]}),
    ({"fallback": "forward nowhere"}, {"fallback": {"action": "forward", "target": "nowhere"}}),
    ({"after_hours": "forward mariupol-102", "fallback": "explode"}, None),
])
def test_the_page_names_the_field_the_api_names(app, changes, api_body):
    """The same mistake through the API (PATCH /api/v1/routes/{id}) and through the page: the same field."""
    from controller.auth import create_token
    from controller.models import User

    c = app.state.clients["root"]
    r = c.post("/routes/save", data=police_form(app, c, **changes), follow_redirects=False)
    assert r.status_code == 422
    shown = [v for k in ("targets", "hours", "fallback", "after_hours") for v in [field_error(r.text, k)] if v]
    assert len(shown) == 1, r.text[:300]
    if api_body is None:
        assert shown[0].startswith("routes.fallback: ")
        return
    with app.state.db.session() as s:
        token = create_token(s, s.scalars(select(User).where(User.name == "root")).one(), "routes-test")
    rid = route_id(app, "Kramatorsk", "police-102")
    api = TestClient(app).patch(f"/api/v1/routes/{rid}", json=api_body, headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 422, api.text
    detail = api.json()["detail"][0]
    assert shown[0] == f"{detail['field']}: {detail['reason']}".replace('"', "&#34;")


def test_the_diff_names_routes_and_targets_added_removed_and_changed():
    import json

    from controller.services.route_edits import table_diff

    old = {"tz": "UTC0", "deny": ["+7"], "targets": {"a": {"number": "+1", "via": ["gsm2"]},
                                                    "b": {"number": "+2", "via": ["gsm2"]}},
           "routes": [{"id": "r1", "port": "gsm1", "targets": ["a", "b"]},
                      {"id": "r2", "port": "gsm3", "targets": ["b"]}]}
    new = {"tz": "UTC0", "deny": ["+7", "+38064"], "targets": {"a": {"number": "+1", "via": ["gsm2"]},
                                                               "c": {"number": "+3", "via": ["gsm2"]}},
           "routes": [{"id": "r1", "port": "gsm1", "targets": ["c", "a"]},
                      {"id": "r3", "port": "gsm1", "targets": ["a"]}]}
    got = [(d["kind"], d["name"], d["change"], d["detail"]) for d in table_diff(json.dumps(old), json.dumps(new))]
    assert got == [("route", "r1 (gsm1)", "changed", "targets: a, b → c, a"),
                   ("route", "r2 (gsm3)", "removed", "port gsm3; targets b"),
                   ("route", "r3 (gsm1)", "added", "port gsm1; targets a"),
                   ("target", "b", "removed", "number +2; via gsm2"),
                   ("target", "c", "added", "number +3; via gsm2"),
                   ("table", "deny", "changed", "added +38064")]
    assert table_diff(json.dumps(new), json.dumps(new)) == []
    assert [d["change"] for d in table_diff(None, json.dumps(new))] == ["added"], "nothing applied: one line"
    assert table_diff("not json", json.dumps(new))[0]["name"] == "whole table"
