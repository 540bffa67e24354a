"""Which controller process runs the duties that must run once (rollouts, alert evaluation, reports).

On PostgreSQL: the one holding a session advisory lock, keyed by the database and schema. Every
process keeps trying (`pg_try_advisory_lock`, every `every_s`) on a connection of its own; the
holder keeps that connection and checks it as often. When the holder dies, even by kill -9, the
server sees its connection close and frees the lock, and another process takes it on its next try:
within seconds. A holder that loses its connection stops leading at once (the lock went with it).

On SQLite the controller is one process by design: it always leads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

log = logging.getLogger("citygate.leader")
LOCK_CLASS = 0x6367  # first key of the two-part advisory lock ("cg"); the second is the schema's hash
EVERY_S = 1.0
MIGRATE_CLASS = 0x636D  # "cm": held while a process brings the schema up to date
_KEY = "hashtext(current_database() || '.' || current_schema())"
_TRY = f"SELECT pg_try_advisory_lock({LOCK_CLASS}, {_KEY})"


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """One process at a time migrates a PostgreSQL schema (N controllers started together); no-op on SQLite."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATE_CLASS}, {_KEY})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATE_CLASS}, {_KEY})")


class Leader:
    """`is_leader` tells whether this process runs the once-only duties now; `name` shows in
    pg_stat_activity as the lock holder's application_name (`citygate-leader-{name}`)."""

    def __init__(self, database_url: str, name: str, every_s: float = EVERY_S):
        self.url, self.name, self.every_s = database_url, name, every_s
        self.postgres = not database_url.startswith("sqlite")
        self.is_leader = not self.postgres
        self.changed = threading.Event()  # set whenever is_leader changes (tests, logs)
        self._stop = threading.Event()
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Leader:
        if self.postgres:
            # one connection, outside any pool: the lock lives and dies with it
            self._engine = create_engine(self.url, poolclass=NullPool,
                                         connect_args={"application_name": f"citygate-leader-{self.name}"[:63],
                                                       "connect_timeout": 5})
            self._thread = threading.Thread(target=self._run, name="citygate-leader", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as e:  # the database went away: whatever we held went with the connection
                self._drop(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            self._stop.wait(self.every_s)
        self._drop("stopping")

    def _tick(self) -> None:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if self.is_leader:
            self._conn.exec_driver_sql("SELECT 1")  # still connected, so still holding the lock
        elif self._conn.exec_driver_sql(_TRY).scalar():
            self._set(True)
            log.warning("this process (%s) is now the leader: it runs rollouts and other once-only duties",
                        self.name)

    def _drop(self, why: str) -> None:
        if self.is_leader:
            log.warning("this process (%s) is no longer the leader (%s)", self.name, why)
        self._set(False)
        if self._conn is not None:
            try:
                self._conn.invalidate()  # closes the socket: the server frees the lock now
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def _set(self, leading: bool) -> None:
        if leading != self.is_leader:
            self.is_leader = leading
            self.changed.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._engine is not None:
            self._engine.dispose()

