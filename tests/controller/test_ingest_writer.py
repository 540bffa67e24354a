"""Two writers of one store at once (PostgreSQL, as two controller processes sharing the ingest): each
commits half a range without seeing the other's; the one that commits last looks again and acks the
whole range. Alone (not shared) a writer does not look again, and the mark stays short."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from controller.ingest import writer as ingest_writer
from controller.ingest.records import prepare_events
from controller.models import StoreMark, now
from protocols import messages
from tests.controller.databases import scratch_database

GW, SID = "gw-race-1", "store-race"


@pytest.fixture
def database(tmp_path, request):
    with scratch_database("postgresql", tmp_path, request.node.name) as db:
        db.upgrade()
        yield db


def events(first: int, last: int, start: int) -> list[tuple]:
    """Calls `first`..`last`, all in the hour of `start`: each half its own hour of its own UTC day and
    month, so the two writers share no aggregate row, hourly, daily or monthly (one would wait for the
    other's commit there, and see its records after)."""
    recs = [messages.call_record(q, start + q, "gsm1", "+380671234567", "police-102", "answered",
                                 "mariupol-102", 1, 2, 30, "ok") for q in range(first, last + 1)]
    return [(GW, "events", prepare_events(GW, {"store_id": SID, "records": recs}, now()))]


@pytest.mark.parametrize("shared", [True, False])
def test_the_later_of_two_racing_commits_acks_both_halves(database, monkeypatch, shared):
    first, second = ingest_writer.Writer(database, shared=shared), ingest_writer.Writer(database, shared=shared)
    real = ingest_writer.write_batch
    other: dict = {}

    def write_then_let_the_other_commit(s, items, stats):
        out = real(s, items, stats)  # 1..50 written, not committed: the other writer cannot see them
        if not other:  # the first writer's batch only (the second comes through here too)
            other["started"] = True
            half = events(51, 100, 1780005600 + 4 * 86400)  # 2026-06-01T22:00Z; the first half's is May 28th
            t = threading.Thread(target=lambda: other.update(acks=second.write(half, [])[0].acks))
            t.start()
            t.join(30)
            assert not t.is_alive()
        return out

    monkeypatch.setattr(ingest_writer, "write_batch", write_then_let_the_other_commit)
    written, stats = first.write(events(1, 50, 1779998400), [])
    assert stats["records"] == 50
    assert other["acks"][(GW, SID)] == 0  # the second saw a gap below its half: nothing to ack yet
    with database.session() as s:
        mark = s.scalars(select(StoreMark.acked_seq).where(StoreMark.store_id == SID)).one_or_none() or 0
    if shared:
        assert written.acks[(GW, SID)] == 100 and mark == 100 and first.settled == 1
    else:  # what the settling step is for: without it the range waits for the gateway to send again
        assert written.acks[(GW, SID)] == 50 and mark == 50
