"""Throwaway databases for tests: a SQLite file, or a schema of its own in a real PostgreSQL.

PostgreSQL: CITYGATE_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test, trust auth).
A test on it is skipped, saying why, only when that server cannot be reached.

Use `KINDS` as a fixture's params and `scratch_url(request.param, directory, label)` in its body:
the URL it yields reaches an empty database (on PostgreSQL a new schema, first in the connection's
search_path, dropped with everything in it afterwards). Dispose every engine on it before leaving.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine

from controller.db import Database

PG_URL = os.environ.get("CITYGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KINDS = ["sqlite", "postgresql"]


@functools.cache
def pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (asked once per test run)."""
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except Exception as e:  # any failure to connect: say which and why
        return f"PostgreSQL at {PG_URL} is unreachable: {type(e).__name__}: {str(e).splitlines()[0]}"
    finally:
        engine.dispose()


@contextmanager
def scratch_url(kind: str, directory: Path, label: str = "t") -> Iterator[str]:
    """The URL of an empty database of this kind ("sqlite" | "postgresql") for one fixture's lifetime."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'citygate.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    schema = "t_" + re.sub(r"\W", "_", label.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            yield PG_URL + ("&" if "?" in PG_URL else "?") + f"options={quote(f'-csearch_path={schema}')}"
        finally:
            with admin.begin() as conn:
                # a connection left open in a transaction on the schema fails the test instead of hanging it
                conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()


@contextmanager
def scratch_database(kind: str, directory: Path, label: str = "t") -> Iterator[Database]:
    """A Database on `scratch_url`, its engine disposed before the schema goes."""
    with scratch_url(kind, directory, label) as url:
        db = Database(url)
        try:
            yield db
        finally:
            db.engine.dispose()
