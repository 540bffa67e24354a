"""GET /api/v1/capacity: each centre's lines split among its gateways, never more in all than it has."""

from __future__ import annotations

API = "/api/v1"
GATEWAYS = ["gw-kramatorsk-1", "gw-mariupol-1", "gw-sloviansk-1", "gw-toretsk-1"]


def _police(client, viewer) -> dict:
    r = client.get(f"{API}/capacity", headers=viewer)
    assert r.status_code == 200, r.text
    return next(c for c in r.json() if c["centre"] == "mariupol-102")


def test_the_split_and_who_got_no_line(client, viewer, operator):
    police = _police(client, viewer)
    assert police["shares"] == dict.fromkeys(GATEWAYS, 1) and police["no_line"] == [] and police["warning"] is None
    centre = next(c for c in client.get(f"{API}/centres", headers=viewer).json()["data"] if c["code"] == "mariupol-102")
    r = client.patch(f"{API}/centres/{centre['id']}", json={"capacity": 3}, headers=operator)
    assert r.status_code == 200, r.text
    police = _police(client, viewer)
    assert police["capacity"] == 3 and sum(police["shares"].values()) == 3
    assert police["shares"]["gw-toretsk-1"] == 0 and police["no_line"] == ["gw-toretsk-1"]
    assert police["warning"].startswith("centre mariupol-102 has 3 lines but 4 gateways dial it: no line for "
                                        "gw-toretsk-1")


def test_capacity_needs_a_reader(client):
    assert client.get(f"{API}/capacity").status_code == 401
