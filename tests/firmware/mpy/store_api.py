"""Flash store API cases; each takes the store root and raises AssertionError on a failure.

MicroPython: `store_api.py WORKDIR CASE...` mounts a fresh 1 MiB image per case (WORKDIR/<case>.img,
under /flash) and prints `PASS <case>` for each. CPython: import CASES and call them with a directory.
"""

import json
import sys

from gw.store import Store, count

OUTCOMES = ("answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied")


def call(n):
    return {"t": "call", "n": n, "start": 1469048400 + n, "port": "gsm1", "caller": "+380501%06d" % n,
            "route": "r%d" % (n % 3), "outcome": OUTCOMES[n % 7], "target": "t%d" % (n % 2), "attempts": 1,
            "ring_s": 3, "talk_s": 20 if n % 7 == 0 else 0, "reason": "ok"}


def expected_counters(records):
    c = {"calls": 0, "dropped": 0, "routes": {}, "targets": {}}
    for r in records:
        count(c, r)
    return c


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def seq_and_id_across_reboots(root):
    s = Store.open(root)
    sid, b = s.store_id, s.boot
    assert len(sid) == 16 and int(sid, 16) >= 0, sid
    assert [s.append(call(n)) for n in range(3)] == [1, 2, 3]
    s = Store.open(root)
    assert (s.store_id, s.boot, s.last_seq) == (sid, b + 1, 3), (s.store_id, s.boot, s.last_seq)
    assert s.append(call(3)) == 4
    s.ack(4)
    s = Store.open(root)
    assert (s.last_seq, s.acked_seq, s.pending()) == (4, 4, [])
    assert s.append(call(4)) == 5, "a seq is never reused, even once everything was acked"
    assert s.counters["calls"] == 5


def pending_and_ack(root):
    s = Store.open(root)
    for n in range(10):
        s.append(call(n))
    p = s.pending(limit=3)
    assert [r["seq"] for r in p] == [1, 2, 3] and [r["n"] for r in p] == [0, 1, 2]
    assert p[0]["caller"] == call(0)["caller"] and p[0]["t"] == "call"
    assert len(s.pending(max_bytes=1)) == 1, "at least one record, whatever max_bytes says"
    assert s.ack(5) is True and s.acked_seq == 5
    assert [r["seq"] for r in s.pending()] == [6, 7, 8, 9, 10]
    assert s.ack(3) is False and s.acked_seq == 5, "an ack never goes back"
    assert s.ack(8, store_id="someone-else") is False and s.acked_seq == 5
    assert s.ack(99) is True and s.acked_seq == 10, "an ack is capped at last_seq"
    assert s.pending() == []
    s.append(call(10))
    s = Store(root)
    assert (s.acked_seq, [r["seq"] for r in s.pending()]) == (10, [11])


def bound_drops_oldest(root):
    s = Store.open(root, max_records=16)  # segments of 4 records
    seq_of = {}
    for n in range(60):
        seq_of[n] = s.append(call(n))
        assert s.unacked() <= 16, s.unacked()
    p = s.pending(1000, 1 << 30)
    drops = [r for r in p if r["t"] == "dropped"]
    kept = set(r["n"] for r in p if r["t"] == "call")
    assert [r["seq"] for r in p] == sorted(set(r["seq"] for r in p)), "in order, no duplicates"
    assert all(r == dict(call(r["n"]), seq=seq_of[r["n"]]) for r in p if r["t"] == "call")
    lost = [n for n in range(60) if n not in kept]
    assert drops and all(d["at"] and d["first_seq"] <= d["last_seq"] < d["seq"] for d in drops), drops
    assert any(d.get("superseded") for d in drops), "older drop records were dropped and re-counted"
    for n in lost:  # every loss is visible: inside the range of a drop record that is still there
        assert any(d["first_seq"] <= seq_of[n] <= d["last_seq"] for d in drops), (n, seq_of[n], drops)
    c = s.counters
    assert c["calls"] == 60 and c["dropped"] == len(lost) == sum(d["count"] for d in drops), (c, lost, drops)
    all_calls = expected_counters([call(n) for n in range(60)])
    assert (c["routes"], c["targets"]) == (all_calls["routes"], all_calls["targets"]), "lost calls still count"
    assert Store(root, max_records=16).counters == c, "counters replay to the same values"


def table_atomic(root):
    s = Store.open(root)
    assert s.load_table() is None and s.table_version() is None
    s.save_table(b'{"v": 1, "body": "one"}', 1)
    s.save_table('{"v": 1, "body": "two"}', 2)
    assert s.load_table() == b'{"v": 1, "body": "two"}' and s.table_version() == 2
    s = Store(root)
    assert s.table_version() == 2 and s.load_table() == b'{"v": 1, "body": "two"}'
    write(s.root + "/table.json.tmp", b"garbage")
    assert Store(root).load_table() == b'{"v": 1, "body": "two"}', "a stale .tmp is never read"
    with open(s.root + "/table.json", "rb") as f:
        data = f.read()
    write(s.root + "/table.json", data[:-3])
    s = Store(root)
    assert s.load_table() is None and s.table_version() is None and s.notes, "a damaged table is refused"


def config_roundtrip(root):
    s = Store.open(root)
    assert s.config() is None
    cfg = {"id": "gw-test-1", "key": "00" * 32, "broker": "mqtt://127.0.0.1:1883", "user": "gw-test-1",
           "password": "pw", "profile": "esp32-2gsm"}
    s.write_config(cfg)
    assert Store(root).config() == cfg
    write(s.root + "/config.json", b'{"id": "gw-')
    assert Store(root).config() is None


def counters_record(root):
    s = Store.open(root)
    for n in range(9):
        s.append(call(n))
    seq = s.counters_record(1469050000)
    r = s.pending(100)[-1]
    assert r["seq"] == seq and r["t"] == "counters" and r["at"] == 1469050000
    assert r["calls"] == 9 and r["routes"] == expected_counters([call(n) for n in range(9)])["routes"]
    assert r["targets"]["t0"]["attempts"] == 5 and "answered" in r["targets"]["t0"]
    assert s.counters["calls"] == 9, "a counters record is not a call"


def tries_count_per_target(root):
    s = Store.open(root)
    s.append({"t": "call", "route": "x", "outcome": "answered", "target": "b", "attempts": 2, "talk_s": 30,
              "tries": [["a", "busy"], ["b", "answered"]]})
    s.append({"t": "call", "route": "x", "outcome": "callback", "target": None, "attempts": [
        {"target": "a", "result": "no_answer"}, {"target": "b", "result": "failed"}]})
    t = s.counters["targets"]
    assert t["a"] == {"attempts": 2, "busy": 1, "no_answer": 1}, t
    assert t["b"] == {"attempts": 2, "answered": 1, "failed": 1, "talk_s": 30}, t
    assert s.counters["routes"]["x"] == {"calls": 2, "answered": 1, "callback": 1, "talk_s": 30}


def corrupt_content_recovers(root):
    s = Store.open(root, seg_records=4, snapshot_ms=0)  # a snapshot at every segment close
    for n in range(22):  # 5 closed segments: both snapshot slots written
        s.append(call(n))
    s.ack(6)
    c, sid, last = json.loads(json.dumps(s.counters)), s.store_id, s.last_seq
    d = s.dir
    newest = "snap%d" % (0 if s.snaps.seqs[0] > s.snaps.seqs[1] else 1)
    write(d + "/" + newest, b'{"seq": 20, "c": {"calls": ')  # the newest snapshot is torn
    write(d + "/meta", b"\x00\xff garbage")  # the id comes back from the snapshot
    with open(d + "/" + s._segs[-1].name, "ab") as f:
        f.write(b'23 {"t": "call", "n": 999, "rou')  # a torn append
    s = Store(root, seg_records=4)
    assert (s.counters, s.store_id, s.last_seq) == (c, sid, last), (s.counters, s.notes)
    assert s.acked_seq == 6 and s.notes
    assert s.append(call(22)) == last + 1, "the torn line is not a record"
    with open(d + "/" + s._segs[-2].name, "ab") as f:
        f.write(b"xx not a record\n")
    s = Store(root, seg_records=4)
    assert [r["n"] for r in s.pending(100)] == list(range(6, 23)), [r.get("n") for r in s.pending(100)]
    assert s.counters["calls"] == 23
    for name in ("snap0", "snap1", "meta", "ack"):
        write(d + "/" + name, b"]]")
    s = Store(root, seg_records=4)  # nothing raises; counters come from the surviving records only
    assert s.last_seq == last + 1 and s.notes and s.acked_seq == 0, "a lost ack only means sending again"


def slots_then_one_segment_append(root):
    s = Store.open(root, slots=4)
    assert [s.append(call(n)) for n in range(3)] == [1, 2, 3]
    assert not s._segs and s._staged == 3, "three records wait in their slots, no segment yet"
    s = Store.open(root, slots=4)  # a reboot: the slots are the records, now moved into a segment
    assert (s.last_seq, s._staged, s.counters["calls"]) == (3, 0, 3), (s.last_seq, s._staged, s.counters)
    assert [(g.first, g.last, g.records) for g in s._segs] == [(1, 3, 3)]
    assert [r["n"] for r in s.pending()] == [0, 1, 2]
    s.ack(2)
    assert [s.append(call(n)) for n in range(3, 7)] == [4, 5, 6, 7] and s._staged == 0
    assert [(g.first, g.last, g.records) for g in s._segs] == [(1, 7, 7)], "4 slots: one append to the segment"
    assert [r["n"] for r in s.pending()] == [2, 3, 4, 5, 6], "acked records are not sent again"
    big = {"t": "alarm", "at": 1469050000, "code": "test", "detail": "x" * 600}  # too big for a slot
    s.append(call(7))
    assert s.append(big) == 9 and s._staged == 0
    assert s._segs[-1].last == 9, "the staged record and the big one, in seq order, in one append"
    s.append(call(8))
    s = Store.open(root, slots=8)  # the slot count changed: the staged record is still found
    p = s.pending(100)
    assert [r["seq"] for r in p] == [3, 4, 5, 6, 7, 8, 9, 10] and p[6]["detail"] == "x" * 600 and p[7]["n"] == 8
    assert s.counters["calls"] == 9 and s.unacked() == 8


def stale_slot_ends_the_run(root):
    s = Store.open(root, slots=4)
    for n in range(6):  # 1..4 in a segment, 5 and 6 in slots 1 and 2; slots 3 and 0 still hold 3 and 4
        s.append(call(n))
    d = s.dir
    write(d + "/s2", b'6 {"t": "call", "n": 5, "rou')  # as if the write of 6 was cut: torn (not on LittleFS)
    s = Store.open(root, slots=4)
    assert s.last_seq == 5 and [r["n"] for r in s.pending()] == [0, 1, 2, 3, 4], s.pending()
    assert s.append(call(99)) == 6 and s.counters["calls"] == 6, "the seq of the lost write is used again"
    s = Store(root, slots=4)
    assert [r["n"] for r in s.pending()][-2:] == [4, 99]


def turns_across_reboots(root):
    """The call machine's round-robin turns ride in the counter snapshots (no write of their own)."""
    s = Store.open(root)
    assert s.snaps.turns == {}
    s.snaps.turns["rr"], s.snaps.turns["hall/2"] = 5, 2
    s.append(call(0))
    s._snapshot()
    s.snaps.turns["rr"] = 6  # after the snapshot: lost with the reboot, the turn restarts from 5
    s = Store.open(root)
    assert s.snaps.turns == {"rr": 5, "hall/2": 2}, s.snaps.turns
    s.snaps.turns["bad"] = "x"  # hostile values written somehow are left out on load
    s.snaps.turns["neg"] = -1
    s._snapshot()
    s._snapshot()  # both slots
    assert Store.open(root).snaps.turns == {"rr": 5, "hall/2": 2}


CASES = [seq_and_id_across_reboots, turns_across_reboots, slots_then_one_segment_append, stale_slot_ends_the_run, pending_and_ack,
         bound_drops_oldest, table_atomic, config_roundtrip, counters_record, tries_count_per_target,
         corrupt_content_recovers]


def main(work, names):
    import os

    import vfs

    from gw.blockdev import FileBlockDev, mount

    by_name = {f.__name__: f for f in CASES}
    for name in names or list(by_name):
        try:
            os.remove(work + "/" + name + ".img")
        except OSError:
            pass
        dev = FileBlockDev(work + "/" + name + ".img", 4096, 256)
        root = mount(dev, "/flash")
        by_name[name](root)
        vfs.umount("/flash")
        print("PASS " + name)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
