"""Out-of-range input is a 4xx naming the field, never a 500 (issue 8, finding 6), and every error
has the one documented body `{"detail": [{"field", "reason"}]}` declared for every route."""

from __future__ import annotations

import pytest

from tests.controller.api.conftest import fields

API = "/api/v1"
HUGE = 248989280529538137194496


@pytest.mark.parametrize(("method", "path", "kwargs", "field"), [
    ("DELETE", f"/holidays/{HUGE}", {}, "item_id"),
    ("GET", "/rollouts", {"params": {"offset": 2060727576747403402368116781347766272}}, "offset"),
    ("PATCH", "/centres/5", {"json": {"capacity": 79608588024747016192}}, "centres.capacity"),
    ("POST", "/gateways/gw-toretsk-1/preview", {"json": {"port": "gsm1", "at": 10**18}}, "preview.at"),
    ("POST", "/gateways/gw-toretsk-1/preview", {"json": {"port": "gsm1", "at": str(10**18)}}, "preview.at"),
    ("POST", "/gateways/gw-toretsk-1/preview", {"json": {"port": "gsm1", "at": "+999999-01-01"}}, "preview.at"),
    ("POST", "/gateways/gw-toretsk-1/preview", {"json": {"port": "gsm1", "turn": 2**64}}, "preview.turn"),
    ("GET", f"/rollouts/{2**31}", {}, "rollout_id"),  # ids are 32-bit INTEGER columns on PostgreSQL
    ("GET", f"/cities/{2**31}", {}, "item_id"),
    ("POST", f"/callbacks/{2**63}/done", {}, "call_id"),
    ("POST", f"/alerts/{HUGE}/resolve", {}, "alert_id"),
    ("GET", "/calls", {"params": {"from": str(HUGE)}}, "from"),
    ("GET", "/calls", {"params": {"to": "9" * 5000}}, "to"),
    ("GET", "/calls", {"params": {"offset": 2**63}}, "offset"),
    ("GET", "/reports/calls", {"params": {"from": -(2**62)}}, "from"),
    ("GET", "/calls", {"params": {"gateway": "gw\x00"}}, "gateway"),
    ("GET", "/gateways/" + "g" * 65, {}, "gateway_id"),
    ("POST", "/routes", {"json": {"city_id": HUGE, "service_id": 1, "name": "r"}}, "routes.city_id"),
    ("POST", "/routes", {"json": {"city_id": 1, "service_id": 1, "name": "r", "valid_from": 2**62}},
     "routes.valid_from"),
    ("POST", "/routes", {"json": {"city_id": 1, "service_id": 1, "name": "r", "strategy": "s" * 17}},
     "routes.strategy"),
    ("POST", "/holidays", {"json": {"city_id": HUGE, "date": "2026-01-01"}}, "holidays.city_id"),
    ("POST", "/services", {"json": {"number": "1020", "name": "nul\x00"}}, "services.name"),
    ("POST", "/gateways", {"json": {"id": "gw-x9", "city": "Toretsk", "out_ports": ["gsm2"],
                                    "services": {"gsm1": "1" * 17}}}, "gateways.services.gsm1"),
])
def test_out_of_range_input_is_a_422_naming_the_field(client, admin, method, path, kwargs, field):
    r = client.request(method, API + path, headers=admin, **kwargs)
    assert r.status_code == 422, r.text
    assert fields(r) == [field], r.json()


def test_text_the_database_cannot_hold_is_refused(client, admin):
    r = client.post(f"{API}/services", content=b'{"number": "1021", "name": "\\ud800"}',
                    headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 422 and fields(r) == ["services.name"]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("POST", "/services", {"content": b"V3\x14w\x14\xff\xfe", "headers": {"Content-Type": "application/json"}}, 400),
    ("GET", "/no-such-thing", {}, 404),
    ("PUT", "/services", {}, 405),
])
def test_framework_errors_have_the_one_error_body(client, admin, method, path, kwargs, status):
    kwargs = dict(kwargs)
    headers = {**admin, **kwargs.pop("headers", {})}
    r = client.request(method, API + path, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert len(detail) == 1 and set(detail[0]) == {"field", "reason"} and detail[0]["reason"]


def test_every_route_documents_the_error_body(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == {"detail"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        if not path.startswith(API):
            continue
        for method, op in item.items():
            for code in ("400", "401", "403", "422"):
                content = op["responses"][code]["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
            if "{" in path:
                assert "404" in op["responses"], (method, path)


def test_a_body_over_the_bound_is_a_413_before_it_is_read_whole(client, admin):
    from controller.api.body_limit import MAX_BODY

    big = b'{"number": "1022", "name": "' + b"x" * MAX_BODY + b'"}'
    r = client.post(f"{API}/services", content=big, headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 413 and fields(r) == ["body"]

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"number": "1022", "name": "'
        for _ in range(MAX_BODY // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    r = client.post(f"{API}/services", content=chunks(), headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 413 and fields(r) == ["body"]
    assert client.get(f"{API}/services", headers=admin).status_code == 200
