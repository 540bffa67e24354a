"""GET /gateways/{id}/impact: what a rollout would change, before it is started."""

from sqlalchemy import select

from controller.compiler import compile_all
from controller.models import City, Gateway, Service, TableVersion

API = "/api/v1"


def test_impact_lists_the_decisions_a_route_change_makes(db, client, operator, viewer):
    with db.session() as s:  # every gateway runs its latest compiled table
        compile_all(s)
        for gw in s.scalars(select(Gateway)):
            gw.desired_version = max(v.version for v in s.scalars(select(TableVersion).where(
                TableVersion.gateway_id == gw.id)))
        city = s.scalars(select(City).where(City.name == "Kramatorsk")).one().id
        service = s.scalars(select(Service).where(Service.number == "102")).one().id
    assert client.get(f"{API}/gateways/gw-kramatorsk-1/impact", headers=viewer).json()["changes"] == []
    body = {"city_id": city, "service_id": service, "name": "police-weekend-night", "targets": ["mariupol-reserve"],
            "hours": [{"days": "67", "start": "20:00", "end": "24:00"}]}
    r = client.post(f"{API}/routes", json=body, headers=operator)
    assert r.status_code == 201, r.text
    try:
        changes = client.get(f"{API}/gateways/gw-kramatorsk-1/impact", headers=viewer).json()["changes"]
        texts = [c["text"] for c in changes]
        assert texts == ["Kramatorsk 102 (gsm1) Sat,Sun 20:00-24:00: dial mariupol-102, mariupol-reserve → "
                         "dial mariupol-reserve"], texts
        assert client.get(f"{API}/gateways/gw-mariupol-1/impact", headers=viewer).json()["changes"] == []
        assert client.get(f"{API}/gateways/gw-nowhere-1/impact", headers=viewer).status_code == 404
    finally:
        assert client.delete(f"{API}/routes/{r.json()['id']}", headers=operator).status_code == 204
