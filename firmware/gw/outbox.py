"""The store's outbox: records in seq order in segment files `store/o<first seq>`, one `<seq> <json>` a line.

LittleFS copies a file's last block on every append: one append per record cost about one block erase
per call. So a record first goes to a slot, `store/s<seq % slots>`, a small file LittleFS keeps inline in
its directory's metadata log (up to 512 bytes with the 512-byte cache gw/blockdev.mount asks for: no
block copy, about one erase per 10-20 records), and the slots are moved into the segment in one append
once `slots` records wait (the stage), or before a record too big for a slot, or at the boot after a cut.
The staged lines stay in RAM too (the line each append made, kept: no copy, pieces of ~250 B): the batch write
and `pending()` never open a slot, so the record path never holds two files open at once. An open file takes one
piece for its LittleFS cache (688 B on the unix port); on esp32-2gsm with a 32 KiB table the heap's largest free
piece is often that one: a batch that opened its segment and then each slot met MemoryErrors (52 in 500 calls,
bench/firmware_bench.py). One contiguous stage buffer instead took 2 KB the table's board could not spare.

The guarantee at a power cut (any block operation; tests/firmware/test_store.py sweeps them all) is the
one the store always gave: a record is on flash when append() returns (in its slot or its segment), so
nothing the controller was sent or the caller was promised is lost. A boot moves the staged records into
a segment: the run E+1, E+2, ... of slot seqs, E the last seq that needs no slot (the segments' end, or
what is acked and in a snapshot). A slot write cut short leaves the old slot whole (LittleFS commits a
file at close), whose older seq ends the run; a slot is rewritten only once its record is in a segment.
Segments close at `seg_records` records or `seg_bytes` bytes, and go once closed, acked (or dropped) and
covered by BOTH counter snapshots, written at most every `snapshot_ms`.
"""

import json
import os

from .counters import as_int, count
from .flashio import line_ok, scan_lines

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


class Segment:
    """One outbox file: the seqs it holds, how many records and bytes, its name."""

    __slots__ = ("first", "last", "records", "size", "name")

    def __init__(self, name, first=0):
        self.name, self.first, self.last, self.records, self.size = name, first, first - 1 if first else 0, 0, 0

    def add(self, first, last, records, size):
        self.first = self.first or first
        self.last, self.records, self.size = last, self.records + records, self.size + size


class Outbox:
    """Mixin of the Store: needs `_p`, `_note`, `counters`, `snaps`, `acked_seq`, `last_seq`, `store_id`, `boot`."""

    def _init_outbox(self, seg_records, seg_bytes, slots, slot_bytes, snapshot_ms, clock_ms):
        self.seg_records, self.seg_bytes = max(2, min(seg_records, self.max_records // 4)), seg_bytes
        self.slots, self.slot_bytes = max(0, slots), slot_bytes  # slots=0: every record straight to its segment
        self.snapshot_ms, self._ms = snapshot_ms, clock_ms or ticks_ms
        self._segs, self._open = [], False  # oldest first; the last segment takes appends while open
        self._staged, self._staged_bytes = 0, 0  # records in slots only: seqs last_seq - _staged + 1 .. last_seq
        self._lines = []  # their lines, as appended this boot
        self._recovered = []  # the staged records a boot found, until written to a segment (then none in _lines)
        self._snap_t0 = None  # when the last snapshot was written (None: none this boot)

    def _load_segments(self, names, S):
        """Read the segments: counters += the records after S; finish a drop cut short."""
        drops, prev, torn = [], [0], False
        for _, name in sorted((int(n[1:]), n) for n in names if n[:1] == "o" and n[1:].isdigit()):
            seg = Segment(name)

            def each(seq, line, sp, seg=seg):
                if seq <= prev[0]:  # a duplicate or out of order: not a record
                    return
                if seq > S or b"dropped" in line:
                    r = json.loads(line[sp + 1:])
                    if seq > S:
                        count(self.counters, r)
                    if r.get("t") == "dropped":
                        drops.append((seq, as_int(r.get("first_seq")), as_int(r.get("last_seq"))))
                prev[0] = seq
                seg.add(seq, seq, 1, len(line))
            torn = scan_lines(self._p(name), each)
            if seg.records:
                self._segs.append(seg)
            else:
                os.remove(self._p(name))
        for seq, a, b in drops:  # finish a drop cut short between its record and the delete
            for seg in self._segs[:]:
                if a <= seg.last <= b and seg.last < seq:
                    self._note("finishing the drop of %s" % seg.name)
                    self._delete(seg)
        last = self._segs[-1] if self._segs else None
        self._open = bool(last) and not torn and last.records < self.seg_records and last.size < self.seg_bytes

    def _load_slots(self, names, S):
        """Take back the staged records from the slots (see the module doc), whatever `slots` was when they were
        written: counters += those after S; _write_recovered() moves them into a segment once the store is open."""
        found = {}
        for n in names:
            if n[:1] == "s" and n[1:].isdigit():
                try:
                    with open(self._p(n), "rb") as f:
                        line = f.read()
                    sp = line.find(b" ")
                    if line_ok(line, sp):
                        found[int(line[:sp])] = line
                except (OSError, ValueError):
                    pass
        seq = max(self._segs[-1].last if self._segs else 0, min(self.acked_seq, S))
        while seq + 1 in found:
            seq += 1
            line = found[seq]
            if seq > S:
                count(self.counters, json.loads(line[line.find(b" ") + 1:]))
            self._recovered.append(line)
            self._staged += 1
            self._staged_bytes += len(line)
        self.last_seq = max(self.last_seq, seq)

    def _write_recovered(self):
        """Write the records taken back from the slots into a segment (one append a boot that found some)."""
        try:
            if self._recovered:
                self._write()
        except OSError as e:  # they stay in their slots and in _recovered; the next append writes them
            self._note("staged records not moved %r" % (e,))

    def _staged_line(self, k):
        """The line of the k-th staged record (0: the oldest), as bytes."""
        return self._recovered[k] if self._recovered else self._lines[k]

    def unacked(self):
        a = self.acked_seq
        return sum(s.records if a < s.first else max(0, s.last - a) for s in self._segs) + min(
            self._staged, self.last_seq - a)

    def append(self, record):
        """Persist `record` (a dict with "t"); returns its seq once it is on flash."""
        if not record.get("t"):
            raise ValueError("record without t")
        self._room(record.get("at") or record.get("start"))
        return self._append(record)

    def counters_record(self, at):
        """Append a `counters` record with the cumulative counters; returns its seq."""
        self._room(at)
        return self._append(dict(self.counters, t="counters", at=at))

    def _append(self, rec, direct=False):
        seq = self.last_seq + 1
        r = dict(rec)
        r.pop("seq", None)  # the seq is the line's prefix
        line = ("%d " % seq).encode() + json.dumps(r).encode() + b"\n"
        if not direct and self.slots and len(line) <= self.slot_bytes and self._staged < self.slots and \
                not self._recovered:
            self._put_slot(seq, line)
            self._lines.append(line)
            self._staged += 1
            self._staged_bytes += len(line)
        else:  # too big for a slot (or no slots): the staged records and this one, in one append
            self._write(line)
        self.last_seq = seq
        count(self.counters, r)
        if self._staged and self._staged >= self.slots:
            try:
                self.flush()
            except (OSError, MemoryError) as e:  # the record is in its slot; the next append writes the batch again
                self._note("flush failed %r" % (e,))
        return seq

    def _put_slot(self, seq, line):  # in place: LittleFS commits it whole at close, or not at all
        with open(self._p("s%d" % (seq % self.slots)), "wb") as f:
            f.write(line)

    def _write(self, extra=None):
        """Append the staged records (the boot's `_recovered`, else `_lines`) and `extra` to the open segment in
        one write; close it when full. The only file open meanwhile is the segment."""
        first = self.last_seq - self._staged + 1
        last = self.last_seq + (extra is not None)
        if first > last:
            return
        seg = self._segs[-1] if self._open else None
        if seg and seg.records and (seg.records + last - first >= self.seg_records or
                                    seg.size + self._staged_bytes + len(extra or b"") > self.seg_bytes):
            self._open = False  # the batch goes whole into a new segment: segments stay within seg_bytes
        if not self._open:
            self._segs.append(Segment("o%d" % first, first))
            self._open = True
        seg, n = self._segs[-1], 0
        try:
            with open(self._p(seg.name), "ab" if seg.records else "wb") as f:  # "wb": drop a torn left-over
                for line in self._recovered or self._lines:
                    n += f.write(line)
                if extra is not None:
                    n += f.write(extra)
        except (OSError, MemoryError):
            self._open = False  # never append after what may be a torn tail
            if not seg.records:
                self._segs.pop()
            raise
        seg.add(first, last, last - first + 1, n)
        self._staged, self._staged_bytes, self._recovered, self._lines = 0, 0, [], []
        if seg.records >= self.seg_records or seg.size >= self.seg_bytes:
            self._open = False
        self._maintain()

    def flush(self):
        """Move the staged records from their slots into the segment now (one append)."""
        self._write()

    def tick(self):
        """Take a snapshot that waits for its minute (so closed, acked segments can go); never raises."""
        try:
            self._maintain()
        except OSError as e:
            self._note("snapshot failed %r" % (e,))

    def _maintain(self):
        """A snapshot when a closed segment waits for one (at most every snapshot_ms), then free."""
        closed = self._segs[: len(self._segs) - self._open]
        if closed and closed[-1].last > self.snaps.covered() and (
                self._snap_t0 is None or ticks_diff(self._ms(), self._snap_t0) >= self.snapshot_ms):
            self._snapshot()
        self._free()

    def _room(self, at):
        for _ in range(4):  # drop the oldest unacked segment while the outbox is full
            if self.unacked() < self.max_records or not self._drop_oldest(at):
                return

    def _drop_oldest(self, at):
        old = [g for g in self._segs[: len(self._segs) - self._open] if g.last > self.acked_seq]
        if not old:
            return False
        seg = old[0]
        a, b = max(seg.first, self.acked_seq + 1), seg.last
        calls, superseded, first = 0, 0, a  # call records; counts of the drop records it supersedes; first seq

        def each(seq, line, sp):
            nonlocal calls, superseded, first
            r = json.loads(line[sp + 1:]) if seq >= a else {}
            if r.get("t") == "call":
                calls += 1
            elif r.get("t") == "dropped":
                superseded += as_int(r.get("count"))
                first = min(first, as_int(r.get("first_seq")) or a)
        scan_lines(self._p(seg.name), each)
        while self.snaps.covered() < b:  # both snapshots must cover the segment before it goes
            self._snapshot()
        d = {"t": "dropped", "count": calls + superseded, "first_seq": first, "last_seq": b, "at": at or 0}
        if superseded:
            d["superseded"] = superseded
        self._append(d, True)  # in the segments first: a boot finishes a drop cut short after it
        self._delete(seg)
        return True

    def pending(self, limit=50, max_bytes=8192):
        """Unacked records in seq order, each with its "seq"; at least one if there is any."""
        self.tick()
        out, size = [], [0]

        def each(seq, line, sp):
            if seq > self.acked_seq:
                if out and (len(out) >= limit or size[0] + len(line) > max_bytes):
                    return True
                out.append(json.loads(line[sp + 1:]))
                out[-1]["seq"], size[0] = seq, size[0] + len(line)
        for seg in self._segs:
            if len(out) >= limit or size[0] >= max_bytes:
                return out
            if seg.last > self.acked_seq:
                scan_lines(self._p(seg.name), each)
        first = self.last_seq - self._staged + 1
        for seq in range(first, self.last_seq + 1):
            line = self._staged_line(seq - first)
            if each(seq, line, line.find(b" ")):
                break
        return out

    def ack(self, seq, store_id=None):
        """The controller holds every record <= seq: free them. False when nothing changes."""
        if store_id is not None and store_id != self.store_id:
            return False
        seq = min(as_int(seq), self.last_seq)
        if seq <= self.acked_seq:
            return False
        self.acked_seq = seq
        with open(self._p("ack"), "wb") as f:  # in place (one LittleFS commit): a torn ack only means sending again
            f.write(b"%d" % seq)
        self._free()
        return True

    def _snapshot(self):
        self.snaps.write(self.last_seq, self.acked_seq, self.store_id, self.boot, self.counters)
        self._snap_t0 = self._ms()

    def _free(self):
        """Delete the closed segments that are acked and covered by both snapshots."""
        lim = min(self.acked_seq, self.snaps.covered())
        while len(self._segs) > self._open and self._segs[0].last <= lim:  # never the open one
            self._delete(self._segs[0])

    def _delete(self, seg):
        self._segs.remove(seg)
        os.remove(self._p(seg.name))
