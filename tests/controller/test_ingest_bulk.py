"""controller.ingest.bulk on SQLite and PostgreSQL: every way stores each key once and counts what it inserted,
including the PostgreSQL fallback when another writer committed some of the keys after the writer looked."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from controller.ingest import bulk as ingest_bulk
from controller.ingest.records import COLUMNS, _sql
from controller.models import Record
from tests.controller.databases import KINDS, scratch_database


@pytest.fixture(params=KINDS)
def database(request, tmp_path):
    with scratch_database(request.param, tmp_path, request.node.name) as db:
        db.upgrade()
        yield db


def rows(seqs, sid="s1"):
    """Call records as rows of COLUMNS (the columns a writer fills, whatever others are added)."""
    base = {"gateway_id": "gw-a", "store_id": sid, "kind": "call", "port": "gsm1", "caller": "+380671234567",
            "route": "r", "outcome": "answered", "target": "t", "attempts": 1, "ring_s": 2, "talk_s": 30,
            "reason": "ok", "data": "{}", "received_at": 1780000000}
    return [tuple({**base, "seq": q, "at": 1780000000 + q}.get(c) for c in COLUMNS) for q in seqs]


def insert(db, batch) -> int:
    with db.session() as s:
        return ingest_bulk.insert_rows(s, "records", COLUMNS, batch, _sql(s, "records"))


@pytest.mark.parametrize("method", ["copy", "staged", "executemany"])
def test_each_key_is_stored_once_and_the_count_says_how_many_were_new(database, method, monkeypatch):
    monkeypatch.setattr(ingest_bulk, "PG_METHOD", method)
    assert insert(database, rows(range(1, 6))) == 5
    # seqs 4 and 5 are there already (as if another writer committed them after this one looked)
    assert insert(database, rows(range(4, 9))) == 3
    assert insert(database, rows(range(1, 9))) == 0
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 8
        assert sorted(s.scalars(select(Record.seq))) == list(range(1, 9))
        rec = s.scalars(select(Record).where(Record.seq == 7)).one()
        assert (rec.kind, rec.at, rec.caller, rec.talk_s, rec.data) == ("call", 1780000007, "+380671234567", 30, {})


def test_a_conflict_leaves_the_rest_of_the_transaction_intact(database):
    """The COPY that hits a stored key is undone back to its savepoint only: earlier work in the
    transaction stays and commits."""
    insert(database, rows([3]))
    with database.session() as s:
        assert ingest_bulk.insert_rows(s, "records", COLUMNS, rows([1], sid="s2"), _sql(s, "records")) == 1
        assert ingest_bulk.insert_rows(s, "records", COLUMNS, rows([1, 2, 3]), _sql(s, "records")) == 2
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 4
