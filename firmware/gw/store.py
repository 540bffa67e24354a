"""Flash store: config, table, outbox, cumulative counters, seq, store id, boot count (MicroPython
on LittleFS, and CPython). Layout under `root` (files replaced via `.tmp` + rename, never removed, except the
ack and the slots, rewritten in place: LittleFS commits a file whole at close, and a torn rewrite elsewhere
could only lose the write in progress: a slot's old record is already in a segment, an old ack means resending):
    config.json        device config (written by provisioning)
    table.json, tin<k> the routing table and the tables being streamed in (gw/tablefiles.py)
    store/meta         `{"id", "boot"}`: the store id (born with the store) and the boot count
    store/snap0|snap1  counter snapshots (gw/counters.py)
    store/ack          the highest seq the controller acknowledged (lost: records are sent again)
    store/o<seq>       outbox segment named by its first seq, one `<seq> <record json>` a line (gw/outbox.py)
    store/s<k>         slot k: the record seq = k mod slots until it moves into a segment (gw/outbox.py)
Counters = best valid snapshot + replay of the records after its S. Torn lines are skipped.
"""

import json
import os

from .counters import TRY_RESULTS, Snapshots, as_int, count, new_counters  # noqa: F401  (count: the host counts the same way)
from .flashio import new_id, read_json, write_atomic
from .outbox import Outbox, Segment  # noqa: F401
from .tablefiles import TABLE_HEAD, TableFiles  # noqa: F401  (TABLE_HEAD: gw.tables)


class Store(Outbox, TableFiles):
    def __init__(self, root="/flash", max_records=2000, seg_records=32, seg_bytes=4000, slots=8, slot_bytes=512,
                 snapshot_ms=60000, clock_ms=None):
        """slots, slot_bytes: how many records wait in slot files before one segment append, and the largest
        (gw/outbox.py); snapshot_ms: the least time between two counter snapshots; clock_ms: a ticks_ms clock."""
        self.root, self.dir = root.rstrip("/"), root.rstrip("/") + "/store"
        self.max_records = max(8, max_records)
        self.notes = []  # what recovery had to do; the app may raise alarms from these
        self.store_id, self.boot, self.last_seq, self.acked_seq = None, 0, 0, 0
        self.counters = new_counters()
        self.snaps = Snapshots(self.dir)
        self._init_outbox(seg_records, seg_bytes, slots, slot_bytes, snapshot_ms, clock_ms)
        self._table = None  # the table version
        try:
            self._load()
            self._write_recovered()
        except Exception as e:  # never raise out of the constructor; keep what was loaded
            self._note("load error %r" % (e,))
        self.store_id = self.store_id or new_id()

    @classmethod
    def open(cls, root="/flash", **kw):
        """Load the store and count this boot."""
        (s := cls(root, **kw)).boot_up()
        return s

    def _note(self, msg):
        self.notes.append(msg)
        print("store:", msg)

    def _p(self, name):
        return self.dir + "/" + name

    def _load(self):
        try:
            os.mkdir(self.dir)
        except OSError:
            pass
        names = os.listdir(self.dir)  # a left-over `.tmp` is harmless: the next write truncates it
        self.drop_staged_tables()
        best = self.snaps.load(names, self._note)
        snap = best or {"seq": 0, "c": self.counters}
        S = self.last_seq = snap["seq"]
        self.counters, self.boot = snap["c"], as_int(snap.get("boot"))
        self.acked_seq = max(as_int(snap.get("acked")), as_int(read_json(self._p("ack"))))
        self._load_segments(names, S)
        self._load_slots(names, S)
        self.last_seq = max([self.last_seq, self.acked_seq] + [g.last for g in self._segs])
        if not best and self._segs and self._segs[0].first > 1:
            self._note("no snapshot: counters rebuilt from the surviving records only")
        meta = read_json(self._p("meta"))
        if isinstance(meta, dict) and isinstance(meta.get("id"), str):
            self.store_id, self.boot = meta["id"], max(self.boot, as_int(meta.get("boot")))
            return
        self.store_id = snap.get("id") if isinstance(snap.get("id"), str) else new_id()
        if best or self._segs:  # the id comes back from a snapshot, else the store gets a new one
            self._note("store meta lost; id %s" % ("kept" if "id" in snap else "renewed"))
        self.boot_up(0)  # the store is born here, before any record can be appended

    def boot_up(self, n=1):
        """Count this boot durably (n=0: only save the id); returns the boot number."""
        self.boot += n
        write_atomic(self._p("meta"), json.dumps({"id": self.store_id, "boot": self.boot}).encode())
        return self.boot

    def config(self):
        """The device config (dict), or None."""
        c = read_json(self.root + "/config.json")
        return c if isinstance(c, dict) else None

    def write_config(self, cfg):
        write_atomic(self.root + "/config.json", json.dumps(cfg).encode())
