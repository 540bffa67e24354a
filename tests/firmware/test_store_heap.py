"""Issue 14: the store's record path holds at most one file open at a time. An open LittleFS file takes one
piece of heap for its cache (688 B on the unix port); on esp32-2gsm with a 32 KiB table the heap often has one
such piece and no second, and the outbox's batch write, which read each slot while its segment was open, met
MemoryErrors (bench/firmware_bench.py: 52 in 500 calls). The staged lines are kept in RAM as appended."""

import builtins
import sys

from emulator import micropython

FIRMWARE = str(micropython.REPO / "firmware")
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)

from gw import outbox  # noqa: E402
from gw.store import Store  # noqa: E402


def call(n):
    return {"t": "call", "start": 1469048400 + n, "port": "gsm1", "caller": "+380501%06d" % n, "route": "r1",
            "outcome": "answered", "target": "t1", "attempts": 1, "ring_s": 3, "talk_s": 20, "reason": "ok"}


def counting_open(monkeypatch):
    """gw.outbox's open() wrapped: the most files it held open at once, and the names it opened."""
    seen = {"open": 0, "most": 0, "names": []}

    class Counted:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self.f.__enter__()

        def __exit__(self, *exc):
            seen["open"] -= 1
            return self.f.__exit__(*exc)

    def wrapped(path, *args):
        f = builtins.open(path, *args)
        seen["open"] += 1
        seen["most"] = max(seen["most"], seen["open"])
        seen["names"].append(str(path).rsplit("/", 1)[-1])
        return Counted(f)

    monkeypatch.setattr(outbox, "open", wrapped, raising=False)
    return seen


def test_a_batch_write_opens_its_segment_and_no_slot(tmp_path, monkeypatch):
    s = Store.open(str(tmp_path), slots=8)
    seen = counting_open(monkeypatch)
    assert [s.append(call(n)) for n in range(16)] == list(range(1, 17))
    assert seen["most"] == 1, "two files open at once"
    assert [n for n in seen["names"] if n[0] == "o"] == ["o1", "o1"], seen["names"]
    assert len([n for n in seen["names"] if n[0] == "s"]) == 16, "one slot write a record"


def test_the_staged_records_are_sent_and_found_after_a_boot_without_reading_a_slot(tmp_path, monkeypatch):
    s = Store.open(str(tmp_path), slots=8)
    for n in range(11):
        s.append(call(n))
    seen = counting_open(monkeypatch)
    assert [r["seq"] for r in s.pending(100)] == list(range(1, 12))
    assert not [n for n in seen["names"] if n[0] == "s"], seen["names"]
    monkeypatch.undo()
    assert [r["seq"] for r in Store(str(tmp_path)).pending(100)] == list(range(1, 12)), "the slots are the records"
