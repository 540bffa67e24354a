"""API tests on real databases: each test module gets a SQLite file and a PostgreSQL schema of its own.

PostgreSQL: CITYGATE_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test, trust auth).
Its tests are skipped, saying why, only when that server cannot be reached.
"""

from __future__ import annotations

import os
import re
import uuid
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from controller.api import create_app
from controller.auth import create_token, create_user
from controller.compiler import compile_gateway
from controller.db import Database
from controller.models import ROLES, Gateway
from controller.reference import seed
from controller.settings import Settings

PG_URL = os.environ.get("CITYGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SETTINGS = Settings(secret_key="test-secret-" + "x" * 32, broker="mqtt://broker.test:1883")


def _pg_unreachable() -> str | None:
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except Exception as e:  # any failure to connect: say which and why
        return f"PostgreSQL at {PG_URL} is unreachable: {type(e).__name__}: {str(e).splitlines()[0]}"
    finally:
        engine.dispose()


def _seeded(db: Database) -> Database:
    db.upgrade()
    with db.session() as s:
        seed(s)
        for gw in s.scalars(select(Gateway)):
            compile_gateway(s, gw, at=1469000000)
    return db


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request, tmp_path_factory):
    """An upgraded, seeded database (the reference region, tables compiled) for one test module."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'citygate.db'}")
        yield _seeded(db)
        db.engine.dispose()
        return
    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    schema = "t_" + re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])[:40] + "_" + uuid.uuid4().hex[:8]
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    db = Database(f"{PG_URL}?options={quote(f'-csearch_path={schema}')}")
    try:
        yield _seeded(db)
    finally:
        db.engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


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
