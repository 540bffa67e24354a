"""Inserting a batch's new records in bulk, each key (gateway, store_id, seq) stored once.

On PostgreSQL the rows go by `COPY` straight into `records`. The writer has already left out every
row it knows is stored (controller.ingest._held), so only another writer committing the same keys
meanwhile can make the COPY hit the unique key: then, back at a savepoint, the rows go by COPY into a
temporary staging table and from it with one `INSERT .. SELECT .. ON CONFLICT DO NOTHING`, and the
count inserted tells the caller to write the batch again (controller.ingest.Raced).

Why not psycopg's `executemany` (pipeline mode, no round trip per row): the server still runs one
INSERT per row, and that per-statement cost was two thirds of the writer's time; the staged INSERT
costs one statement but writes every row twice. bench/ingest_write_bench.py measures the ways side by
side (PG_METHOD). SQLite runs inside the writer's process, where one prepared statement executed
many times is already the bulk path.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

STAGE_SUFFIX = "_ingest_stage"
# "copy" (COPY, staged on a conflict), "staged" (always staged), "executemany": the write bench sets it
PG_METHOD = "copy"


def insert_rows(s: Session, table: str, columns: tuple[str, ...], rows: list[tuple], executemany_sql: str) -> int:
    """Insert `rows` (tuples of `columns`: RecordRows for `records`) into `table`, skipping keys already
    there; the number inserted.

    `executemany_sql` is the per-row `INSERT .. ON CONFLICT DO NOTHING` (SQLite, and the bench's baseline).
    """
    if not rows:
        return 0
    conn = s.connection()
    if s.bind.dialect.name != "postgresql" or PG_METHOD == "executemany":
        # exact tuples: sqlite3 binds a tuple subclass (RecordRow) through its slow generic-sequence path,
        # which cost more per row (1.1 us) than copying it (0.1 us)
        return conn.exec_driver_sql(executemany_sql, [tuple(r) for r in rows]).rowcount
    cols = ", ".join(columns)
    try:
        with conn.connection.driver_connection.cursor() as cur:
            if PG_METHOD == "copy":
                cur.execute("SAVEPOINT ingest_bulk")
                try:
                    _copy(cur, table, cols, rows)
                    return len(rows)
                except psycopg.errors.UniqueViolation:  # another writer stored some of them meanwhile
                    cur.execute("ROLLBACK TO SAVEPOINT ingest_bulk")
            return _staged(cur, table, cols, rows)
    except psycopg.Error as e:  # as SQLAlchemy would raise it: the writer waits out OperationalError
        invalidated = isinstance(e, psycopg.OperationalError)
        if invalidated:
            conn.invalidate(e)
        raise DBAPIError.instance(f"COPY {table}", None, e, psycopg.Error, connection_invalidated=invalidated) from e


def _copy(cur, table: str, cols: str, rows: list[tuple]) -> None:
    """Text COPY: binary (types set per column) measured only ~4% faster here."""
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _staged(cur, table: str, cols: str, rows: list[tuple]) -> int:
    """COPY into a temporary table of the same columns (one per connection, emptied at each commit),
    then one INSERT .. ON CONFLICT DO NOTHING from it."""
    stage = table + STAGE_SUFFIX
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                f"SELECT {cols} FROM {table} WITH NO DATA")
    cur.execute(f"DELETE FROM {stage}")  # rows of an earlier call in this same transaction
    _copy(cur, stage, cols, rows)
    cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING")
    return cur.rowcount
