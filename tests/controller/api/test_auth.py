"""Every API route: 401 without or with a bad token, 403 for each role it does not admit."""

from __future__ import annotations

import re

import pytest
from fastapi import routing as fastapi_routing
from sqlalchemy import select

from controller.api import create_app
from controller.auth import create_token, create_user, token_hash, user_for_token
from controller.db import Database
from controller.models import ROLES, Token
from tests.controller.api.conftest import auth

# Ids that exist nowhere, so a request a role is allowed to make changes nothing.
MISSING = {"item_id": "999999", "gateway_id": "gw-missing", "rollout_id": "999999", "call_id": "999999",
           "alert_id": "999999", "centre": "centre-missing"}


def _roles(dependant) -> frozenset | None:
    stack = [dependant]
    while stack:
        d = stack.pop()
        if hasattr(d.call, "roles"):
            return d.call.roles
        stack.extend(d.dependencies)
    return None


def api_routes() -> list[tuple[str, str, frozenset | None]]:
    """(method, path, roles) of every route of the app, from its route table."""
    app = create_app(Database("sqlite://"))
    routes = (fastapi_routing.iter_route_contexts(app.routes) if hasattr(fastapi_routing, "iter_route_contexts")
              else app.routes)
    out = []
    for r in routes:
        dependant = getattr(r, "dependant", None)
        for method in sorted(getattr(r, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, r.path, _roles(dependant) if dependant else None))
    return out


ROUTES = [r for r in api_routes() if r[1].startswith("/api/v1/")]
PUBLIC = {("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/docs"),
          ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: MISSING[m.group(1)], path)


def test_the_route_table_is_what_the_api_promises():
    everything = {(m, p) for m, p, _ in api_routes()}
    assert everything - {(m, p) for m, p, _ in ROUTES} == PUBLIC
    assert len(ROUTES) >= 45
    for method, path, roles in ROUTES:
        assert roles is not None, f"{method} {path} checks no role"
        assert "admin" in roles and roles <= set(ROLES)


def test_openapi_and_health_are_public(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/gateways/{gateway_id}/preview" in spec["paths"]
    assert client.get("/healthz").json()["ok"] is True


@pytest.mark.parametrize(("method", "path", "roles"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_route_needs_a_token_and_a_role(client, tokens, method, path, roles):
    url = _url(path)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        r = client.request(method, url, headers=headers)
        assert r.status_code == 401, (method, url, headers, r.text)
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["detail"][0]["field"] == "Authorization"
    for role in ROLES:
        r = client.request(method, url, headers=auth(tokens[role]))
        if role in roles:
            assert r.status_code not in (401, 403), (role, method, url, r.text)
        else:
            assert r.status_code == 403, (role, method, url, r.text)
            assert r.json()["detail"] == [{"field": "role", "reason": r.json()["detail"][0]["reason"]}]


def test_roles_match_the_issue(client):
    table = {(m, p): roles for m, p, roles in ROUTES}
    assert table[("GET", "/api/v1/gateways")] == set(ROLES)
    assert table[("GET", "/api/v1/gateways/{gateway_id}/bundle")] == {"admin", "technician"}
    assert table[("POST", "/api/v1/gateways/{gateway_id}/rotate-key")] == {"admin", "technician"}
    assert table[("GET", "/api/v1/audit")] == {"admin"}  # who was handed which gateway's secrets
    assert table[("POST", "/api/v1/gateways/{gateway_id}/commands")] == {"admin", "technician"}
    assert table[("POST", "/api/v1/routes")] == {"admin", "operator"}
    assert table[("POST", "/api/v1/rollouts")] == {"admin", "operator"}
    assert table[("POST", "/api/v1/callbacks/{call_id}/done")] == {"admin", "operator"}
    assert table[("GET", "/api/v1/reports/calls")] == {"admin", "operator", "viewer"}
    writes = [(m, p) for (m, p), roles in table.items() if m != "GET" and "viewer" in roles]
    assert writes == [("POST", "/api/v1/gateways/{gateway_id}/preview")]  # a read with a body


def test_tokens_are_stored_hashed_and_revocable(db, client):
    with db.session() as s:
        user = create_user(s, "revoke-me", "viewer")
        token = create_token(s, user, "laptop")
        row = s.scalars(select(Token).where(Token.user_id == user.id)).one()
        assert row.sha256 == token_hash(token) and token not in row.sha256 and len(token) >= 40
        assert user_for_token(s, token).id == user.id
    assert client.get("/api/v1/cities", headers=auth(token)).status_code == 200
    with db.session() as s:
        s.scalars(select(Token).where(Token.sha256 == token_hash(token))).one().revoked = True
    assert client.get("/api/v1/cities", headers=auth(token)).status_code == 401
    with db.session() as s, pytest.raises(ValueError, match="role"):
        create_user(s, "nobody", "superuser")
