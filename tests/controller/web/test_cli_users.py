"""`citygate user add|password|list|disable` and `citygate token list|revoke`: passwords from stdin (hashed,
never stored as given), a disabled user's token refused by the API and their password by /login."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from controller.api.app import create_app
from controller.cli import app
from controller.db import Database
from controller.models import User
from controller.settings import get_settings
from controller.web import router

runner = CliRunner()


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    monkeypatch.setenv("CITYGATE_DATABASE_URL", url)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield url
    get_settings.cache_clear()


def cli(*args, input=None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})


def sign_in(client, name: str, password: str) -> int:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    return client.post("/login", data={"csrf": csrf, "name": name, "password": password},
                       follow_redirects=False).status_code


def test_users_and_tokens_from_the_command_line(db_url):
    r = cli("user", "add", "alice", "--role", "admin", "--password-stdin", input="correct horse battery\n")
    assert r.exit_code == 0 and "signs in with a password" in r.output and "token (shown once)" in r.output, r.output
    token = r.output.split("token (shown once): ")[1].split()[0]
    with Database(db_url).session() as s:
        alice = s.scalars(select(User).where(User.name == "alice")).one()
        assert alice.password_hash.startswith("$argon2id$") and "correct horse" not in alice.password_hash
    r = cli("user", "add", "bob", "--role", "viewer", "--password-stdin", input="short\n")
    assert r.exit_code == 2 and "password" in r.output and "8 to 256" in r.output, r.output
    r = cli("user", "add", "alice", "--role", "admin", "--password-stdin", input="another password\n")
    assert r.exit_code == 2 and "exists already" in r.output
    r = cli("user", "add", "robot", "--role", "gardener")
    assert r.exit_code == 2 and "role" in r.output
    assert cli("user", "add", "robot", "--role", "operator").exit_code == 0  # no terminal: tokens only
    r = cli("user", "list", "--json")
    listed = {u["name"]: u for u in json.loads(r.output)}
    assert listed["alice"]["password"] is True and listed["robot"]["password"] is False
    web_app = create_app(Database(db_url))
    web_app.include_router(router)
    client = TestClient(web_app)
    assert client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert sign_in(client, "alice", "correct horse battery") == 303
    assert client.get("/fleet", follow_redirects=False).status_code == 200
    r = cli("user", "disable", "alice")
    assert r.exit_code == 0 and "disabled" in r.output
    assert client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/fleet", follow_redirects=False).status_code == 303, "her session ended"
    assert sign_in(client, "alice", "correct horse battery") == 401
    assert cli("user", "disable", "alice", "--enable").exit_code == 0
    assert client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = cli("token", "list", "--json")
    tokens = json.loads(r.output)
    mine = next(t for t in tokens if t["user"] == "alice")
    assert token not in r.output and mine["revoked"] is False
    assert cli("token", "revoke", str(mine["id"])).exit_code == 0
    assert client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    r = cli("token", "revoke", "999")
    assert r.exit_code == 2 and "no token 999" in r.output
    r = cli("user", "password", "alice", "--password-stdin", input="a new long password\n")
    assert r.exit_code == 0, r.output
