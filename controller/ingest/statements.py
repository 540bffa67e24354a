"""The upserts the ingest writes per batch (hourly aggregates, stores' marks) and their SQL text.

Written as SQL text for the driver: SQLAlchemy would compile the ON CONFLICT forms again for every
batch (they are not cached), which cost a third of the writer. On PostgreSQL an upsert is one
statement over one array per column (unnest), not an executemany: that runs one statement per row,
and call_hours' statement triggers (call_days, migration 0008) then ran once per row as well, most of
the writer's time after the COPY (bench/ingest_write_bench.py).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from controller.db import driver_marks
from controller.ingest.rows import COLUMNS
from protocols.messages import HOUR_COUNTS

# PostgreSQL: the column types of each upsert's rows, sent as one array per column
_ARRAYS = {"hours": ("text", "bigint", "text", "text", *["bigint"] * len(HOUR_COUNTS)),
           "marks": ("text", "text", "bigint")}


def upsert(s: Session, which: str, rows: list[tuple]) -> None:
    """The hours' or the marks' upsert of `rows` (distinct keys: one statement may not update a row twice)."""
    conn = s.connection()
    if s.bind.dialect.name != "postgresql":
        conn.exec_driver_sql(sql(s, which), rows)
        return
    conn.exec_driver_sql(sql(s, which + "_unnest"), tuple(map(list, zip(*rows, strict=True))))


def sql(s: Session, which: str) -> str:
    """A statement written per batch ("records": the per-row insert; "hours", "marks", or either with
    "_unnest": PostgreSQL's form over arrays), made once per dialect."""
    dialect = s.bind.dialect.name
    cached = _SQL.get((dialect, which))
    if cached:
        return cached
    mark, json_mark = driver_marks(s)
    unnest = which.endswith("_unnest")  # PostgreSQL: the rows as one array per column
    kind = which.removesuffix("_unnest")
    if kind == "records":
        values = ", ".join(json_mark if c == "data" else mark for c in COLUMNS)
        return _cache(dialect, which, f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({values}) "
                                      "ON CONFLICT (gateway_id, store_id, seq) DO NOTHING")
    if kind == "hours":
        table, key = "call_hours", "gateway_id, hour, route, target"
        cols = ("gateway_id", "hour", "route", "target", *HOUR_COUNTS)
        sets = ", ".join(f"{c} = call_hours.{c} + excluded.{c}" for c in HOUR_COUNTS)
    else:  # marks: never lowered, whatever another writer did meanwhile
        table, cols, key = "store_marks", ("gateway_id", "store_id", "acked_seq"), "gateway_id, store_id"
        greatest = "GREATEST" if dialect == "postgresql" else "MAX"
        sets = f"acked_seq = {greatest}(store_marks.acked_seq, excluded.acked_seq)"
    rows = (f"SELECT * FROM unnest({', '.join(f'CAST({mark} AS {t}[])' for t in _ARRAYS[kind])})" if unnest
            else f"VALUES ({', '.join([mark] * len(cols))})")
    return _cache(dialect, which, f"INSERT INTO {table} ({', '.join(cols)}) {rows} "
                                  f"ON CONFLICT ({key}) DO UPDATE SET {sets}")


def _cache(dialect: str, which: str, text: str) -> str:
    _SQL[(dialect, which)] = text
    return text


_SQL: dict[tuple[str, str], str] = {}
