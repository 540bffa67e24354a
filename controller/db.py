"""Engine and sessions: SQLite (WAL) by default, PostgreSQL at scale, the same code on both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the bridge acks it and the gateway frees its outbox
            # (NORMAL may roll the last commits back after a power loss; the fsync costs ~0.5 ms here)
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def driver_marks(s: Session) -> tuple[str, str]:
    """Parameter marks for SQL text that goes to the driver as it is: (a value, a JSON value).

    psycopg's `%s` (a JSON value cast, as it comes as text) on PostgreSQL, sqlite3's `?` on SQLite.
    """
    if s.bind.dialect.name == "postgresql":
        return "%s", "CAST(%s AS JSON)"
    return "?", "?"


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def upgrade(self) -> None:
        """Bring the schema to the latest Alembic revision."""
        from controller.migrate import upgrade

        upgrade(self)
