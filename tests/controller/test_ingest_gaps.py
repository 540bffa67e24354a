"""Issue 8, finding 4: a `dropped` record stands for its seqs as an interval, never expanded. One
covering 10^8 seqs held above a gap costs the writer nothing per batch, and the ack still jumps
across it once the gap fills (real SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import tracemalloc

from controller.ingest.records import _covered, advance, write_batch
from protocols import messages
from tests.controller import test_ingest
from tests.controller.test_ingest import GW, call

database = test_ingest.database  # SQLite and PostgreSQL
WIDE = 10 ** 8


def test_dropped_records_are_intervals_and_the_mark_jumps_across_them():
    assert _covered("dropped", {"first_seq": 3, "last_seq": WIDE}) == (3, WIDE)
    assert _covered("call", None) is None
    assert advance(1, {2, 3}, []) == 3
    assert advance(1, {2}, [(3, WIDE)]) == WIDE, "a stored seq, then the interval after it"
    assert advance(1, {WIDE + 1}, [(2, WIDE)]) == WIDE + 1, "the interval, then a stored seq after it"
    assert advance(1, set(), [(5, WIDE)]) == 1, "seqs 2-4 are missing: no jump"
    assert advance(10, {11}, [(2, 8), (12, 20), (15, 30), (32, 40)]) == 30, "overlaps merge, a gap at 31 stops"
    assert advance(50, set(), [(2, 40)]) == 50, "an interval below the mark changes nothing"


def test_a_dropped_record_over_1e8_seqs_is_cheap_and_acked_right(database):
    database.upgrade()
    sid = "wide-drop"
    stats = {"records": 0, "duplicates": 0}

    def write(records: list[dict]) -> int:
        with database.session() as s:
            return write_batch(s, [(GW, "events", messages.events(sid, records))], stats).acks[(GW, sid)]

    assert write([call(1)]) == 1
    tracemalloc.start()
    try:
        started = time.perf_counter()
        # seq 2 is missing; the dropped record (seq WIDE+3) stands for 3..WIDE+2 and waits above the gap
        assert write([messages.dropped_record(WIDE + 3, 1469500100, WIDE, 3, WIDE + 2), call(WIDE + 4)]) == 1
        for i in range(5):  # every later batch reads the held dropped record again
            assert write([call(WIDE + 5 + i)]) == 1
        assert write([call(2)]) == WIDE + 9, "the gap filled: the ack jumps across the interval"
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20, f"{peak / 2 ** 20:.0f} MiB: the interval was expanded"
    assert elapsed < 10, f"{elapsed:.1f} s for 7 batches"  # expanded, one batch took ~10 s and ~6 GB
