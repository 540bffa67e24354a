"""API tests on real databases: each test module gets a SQLite file and a PostgreSQL schema of its own
(tests/controller/databases.py: CITYGATE_TEST_PG; skipped, saying why, only when it is unreachable).
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller.api import create_app
from controller.auth import create_token, create_user
from controller.compiler import compile_gateway
from controller.db import Database
from controller.models import ROLES, Gateway
from controller.reference import seed
from controller.settings import Settings
from tests.controller.databases import KINDS, scratch_database

SETTINGS = Settings(secret_key="test-secret-" + "x" * 32, broker="mqtt://broker.test:1883")


def _seeded(db: Database) -> Database:
    db.upgrade()
    with db.session() as s:
        seed(s)
        for gw in s.scalars(select(Gateway)):
            compile_gateway(s, gw, at=1469000000)
    return db


@pytest.fixture(scope="module", params=KINDS)
def db(request, tmp_path_factory):
    """An upgraded, seeded database (the reference region, tables compiled) for one test module."""
    label = request.module.__name__.rsplit(".", 1)[-1]
    with scratch_database(request.param, tmp_path_factory.mktemp("db"), label) as db:
        yield _seeded(db)


@pytest.fixture(scope="module")
def tokens(db) -> dict[str, str]:
    """A bearer token per role."""
    out = {}
    with db.session() as s:
        for role in ROLES:
            out[role] = create_token(s, create_user(s, f"{role}-{uuid.uuid4().hex[:6]}", role), "tests")
    return out


@pytest.fixture(scope="module")
def client(db) -> TestClient:
    with TestClient(create_app(db, settings=SETTINGS)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def admin(tokens) -> dict[str, str]:
    return auth(tokens["admin"])


@pytest.fixture(scope="module")
def operator(tokens) -> dict[str, str]:
    return auth(tokens["operator"])


@pytest.fixture(scope="module")
def viewer(tokens) -> dict[str, str]:
    return auth(tokens["viewer"])


@pytest.fixture(scope="module")
def technician(tokens) -> dict[str, str]:
    return auth(tokens["technician"])


def fields(response) -> list[str]:
    """The field names of an error response ({"detail": [{"field", "reason"}]})."""
    return [d["field"] for d in response.json()["detail"]]
