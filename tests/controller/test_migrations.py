"""The Alembic migrations on SQLite and PostgreSQL: upgraded, the schema is exactly the models (nothing
for autogenerate to write); they go down to nothing and up again; 0002 fills call_hours from records;
0003 swaps the outcome index for one of the open callbacks; 0004 adds the secret hand-out audit;
0005 says which services holidays close (emergency numbers never)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from controller import migrate
from controller.db import Database
from controller.models import Base
from tests.controller.databases import KINDS, scratch_database


@pytest.fixture(params=KINDS)
def db(request, tmp_path):
    with scratch_database(request.param, tmp_path, request.node.name) as db:
        yield db


def differences(db: Database) -> list:
    """What `alembic revision --autogenerate` would write: schema vs models, types and defaults included."""
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, Base.metadata)


def revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def downgrade(db: Database, to: str) -> None:
    cfg = migrate.config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, to)


HEAD = "0009"


def indexes(db: Database, table: str) -> set[str]:
    return {ix["name"] for ix in sa.inspect(db.engine).get_indexes(table)}


def tables(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def test_upgraded_schema_is_the_models_and_goes_down_and_up_again(db):
    db.upgrade()
    assert revision(db) == HEAD
    assert differences(db) == []
    db.upgrade()  # every controller start runs it: a no-op at head
    assert revision(db) == HEAD and differences(db) == []

    downgrade(db, "base")
    assert revision(db) is None
    assert tables(db) == {"alembic_version"}

    db.upgrade()
    assert revision(db) == HEAD
    assert tables(db) == set(Base.metadata.tables) | {"alembic_version"}
    assert differences(db) == []


def test_0002_down_to_0001_restores_its_index_and_up_again(db):
    db.upgrade()
    downgrade(db, "0001")
    assert "call_hours" not in tables(db)
    assert "ix_records_gateway_id" in {ix["name"] for ix in sa.inspect(db.engine).get_indexes("records")}
    db.upgrade()
    assert "ix_records_gateway_id" not in {ix["name"] for ix in sa.inspect(db.engine).get_indexes("records")}
    assert differences(db) == []


RECORDS = sa.table("records", *[sa.column(c) for c in ("gateway_id", "store_id", "seq", "kind", "at", "route",
                                                       "target", "outcome", "ring_s", "talk_s", "received_at")],
                   sa.column("data", sa.JSON))
HOUR = 1469440800  # 2016-07-25 10:00 UTC


def test_0002_fills_call_hours_from_the_records_already_stored(db):
    migrate.upgrade(db, "0001")

    def rec(seq, kind="call", at=HOUR, route="r102", target="mariupol-102", outcome="answered", ring=3, talk=20):
        return {"gateway_id": "gw-a", "store_id": "s1", "seq": seq, "kind": kind, "at": at, "route": route,
                "target": target, "outcome": outcome, "ring_s": ring, "talk_s": talk, "received_at": HOUR,
                "data": {}}

    with db.engine.begin() as conn:
        conn.execute(RECORDS.insert(), [
            rec(1), rec(2, at=HOUR + 3599, outcome="abandoned", talk=None),
            rec(3, at=HOUR + 3600, outcome="failed", target=None, ring=None, talk=None),
            rec(4, route=None, target=None, outcome="denied", ring=None, talk=None),
            rec(5, kind="counters", outcome=None), rec(6, at=None),  # not counted: not a call, no time
        ])
    db.upgrade()
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT gateway_id, hour, route, target, offered, answered, abandoned, failed, denied, talk_s, ring_s "
            "FROM call_hours ORDER BY hour, route, target")).all()
    assert [tuple(r) for r in rows] == [
        ("gw-a", HOUR, "", "", 1, 0, 0, 0, 1, 0, 0),
        ("gw-a", HOUR, "r102", "mariupol-102", 2, 1, 1, 0, 0, 20, 6),
        ("gw-a", HOUR + 3600, "r102", "", 1, 0, 0, 1, 0, 0, 0),
    ]


def test_0003_indexes_only_the_open_callbacks_and_goes_back(db):
    db.upgrade()
    assert "ix_records_open_callbacks" in indexes(db, "records")
    assert "ix_records_outcome" not in indexes(db, "records")
    downgrade(db, "0002")
    assert "ix_records_outcome" in indexes(db, "records")
    assert "ix_records_open_callbacks" not in indexes(db, "records")
    db.upgrade()
    assert revision(db) == HEAD and differences(db) == []


def test_0004_adds_the_secret_audit_and_goes_back(db):
    db.upgrade()
    assert "secret_audit" in tables(db)
    assert {"ix_secret_audit_at", "ix_secret_audit_gateway_id"} <= indexes(db, "secret_audit")
    downgrade(db, "0003")
    assert "secret_audit" not in tables(db)
    db.upgrade()
    assert revision(db) == HEAD and differences(db) == []


def test_0005_emergency_services_stay_open_on_holidays_and_goes_back(db):
    """Existing services keep closing on holidays, except the emergency numbers (the police closed before)."""
    migrate_to = migrate.config(db.url)
    with db.engine.begin() as conn:
        migrate_to.attributes["connection"] = conn
        command.upgrade(migrate_to, "0004")
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO services (number, name) VALUES ('102', 'Police'), ('505', 'Info'), "
                             "('112', 'Emergency')"))
    db.upgrade()
    with db.engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT number, closed_on_holidays FROM services")).all())
    assert {k: bool(v) for k, v in rows.items()} == {"102": False, "505": True, "112": False}
    downgrade(db, "0004")
    assert "closed_on_holidays" not in {c["name"] for c in sa.inspect(db.engine).get_columns("services")}
    db.upgrade()
    assert revision(db) == HEAD and differences(db) == []
