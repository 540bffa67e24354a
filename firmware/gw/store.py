"""Flash store: config, table, outbox, cumulative counters, seq, store id, boot count (MicroPython
on LittleFS, and CPython). Layout under `root` (files replaced via `.tmp` + rename, never removed):
    config.json        device config (written by provisioning)
    table.json         header line `{"version", "len", "crc"}`, then the signed table envelope
    store/meta         `{"id", "boot"}`: the store id (born with the store) and the boot count
    store/snap0|snap1  counter snapshots `{"seq": S, "acked", "id", "boot", "c": counters}`
    store/ack          the highest seq the controller acknowledged
    store/o<seq>       outbox segment named by its first seq, one `<seq> <record json>` a line
A segment closes after `seg_records` records or `seg_bytes` bytes and writes a snapshot into the
older slot. Counters = best valid snapshot + replay of the records after its S. A segment goes once
closed, acked (or dropped) and covered by BOTH snapshots. Torn lines are skipped.
"""

import json
import os

try:
    from binascii import crc32
except ImportError:  # pragma: no cover
    crc32 = None
_crc = (lambda b: crc32(b) & 0xFFFFFFFF) if crc32 else (lambda b: 0)

TRY_RESULTS = ("answered", "busy", "no_answer", "failed")
SNAP_TYPES = (("calls", int), ("dropped", int), ("routes", dict), ("targets", dict))


def _inc(d, k, n=1):
    d[k] = d.get(k, 0) + n


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def count(c, r):
    """Add record r to counters c: routes[id] {"calls", <outcome>, "talk_s"}, targets[id] {"attempts", <TRY_RESULTS>,
    "talk_s"} (absent = 0) from r["tries"] [[target, result], ...], else one attempt for r["target"]."""
    t = r.get("t")
    if t == "dropped":  # `count` includes the counts of the older drop records it supersedes
        c["dropped"] += _int(r.get("count")) - _int(r.get("superseded"))
    if t != "call":
        return
    c["calls"] += 1
    talk, tg = _int(r.get("talk_s")), r.get("target")
    rc = c["routes"].setdefault(str(r.get("route") or "-"), {})
    for k, n in (("calls", 1), (str(r.get("outcome") or "unknown"), 1), ("talk_s", talk)):
        if n:
            _inc(rc, k, n)
    tries = r.get("tries", r.get("attempts"))
    if not isinstance(tries, list):
        tries = [[tg, "answered" if r.get("outcome") == "answered" else None]] if tg else []
    for x in tries:
        tid, res = (x.get("target"), x.get("result")) if isinstance(x, dict) else (x[0], x[1])
        if tid is not None:
            tc = c["targets"].setdefault(str(tid), {})
            _inc(tc, "attempts")
            if res in TRY_RESULTS:
                _inc(tc, res)
    if talk and tg:
        _inc(c["targets"].setdefault(str(tg), {}), "talk_s", talk)


def _read_json(path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except Exception:  # missing, torn or corrupt: the caller falls back
        return None


def _write(path, data):
    """Atomic replace: write `path.tmp`, close, rename onto `path` (never remove first)."""
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


def _new_id():  # 16 hex chars
    return "".join("%02x" % b for b in os.urandom(8))


class Store:
    def __init__(self, root="/flash", max_records=2000, seg_records=32, seg_bytes=4000):
        self.root, self.dir = root.rstrip("/"), root.rstrip("/") + "/store"
        self.max_records = max(8, max_records)
        self.seg_records, self.seg_bytes = max(2, min(seg_records, self.max_records // 4)), seg_bytes
        self.notes = []  # what recovery had to do; the app may raise alarms from these
        self.store_id, self.boot, self.last_seq, self.acked_seq = None, 0, 0, 0
        self.counters = {"calls": 0, "dropped": 0, "routes": {}, "targets": {}}
        self._snap = [-1, -1]  # S of each snapshot slot, -1 = none or invalid
        self._segs = []  # [first_seq, last_seq, records, bytes, file name], oldest first
        self._open, self._table = False, None  # the last segment takes appends; the table version
        try:
            self._load()
        except Exception as e:  # never raise out of the constructor; keep what was loaded
            self._note("load error %r" % (e,))
        self.store_id = self.store_id or _new_id()

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
        best = None
        for i in (0, 1):
            s = _read_json(self._p("snap%d" % i))
            try:
                ok = type(s["seq"]) is int and all(type(s["c"][k]) is t for k, t in SNAP_TYPES)
            except Exception:
                ok = False
            if ok:
                self._snap[i] = s["seq"]
                best = s if best is None or s["seq"] > best["seq"] else best
            elif "snap%d" % i in names:
                self._note("snapshot %d unreadable" % i)
        snap = best or {"seq": 0, "c": self.counters}
        S = self.last_seq = snap["seq"]
        self.counters, self.boot = snap["c"], _int(snap.get("boot"))
        self.acked_seq = max(_int(snap.get("acked")), _int(_read_json(self._p("ack"))))
        drops, prev, torn = [], [0], False
        for _, name in sorted((int(n[1:]), n) for n in names if n[:1] == "o" and n[1:].isdigit()):
            seg = [0, 0, 0, 0, name]
            def each(seq, line, sp, seg=seg):
                if seq <= prev[0]:  # a duplicate or out of order: not a record
                    return
                if seq > S or b"dropped" in line:
                    r = json.loads(line[sp + 1:])
                    if seq > S:
                        count(self.counters, r)
                    if r.get("t") == "dropped":
                        drops.append((seq, _int(r.get("first_seq")), _int(r.get("last_seq"))))
                prev[0] = seg[1] = seq
                seg[0] = seg[0] or seq
                seg[2] += 1
                seg[3] += len(line)
            torn = self._scan(name, each)
            if seg[2]:
                self._segs.append(seg)
            else:
                os.remove(self._p(name))
        for seq, a, b in drops:  # finish a drop cut short between its record and the delete
            for seg in self._segs[:]:
                if a <= seg[1] <= b and seg[1] < seq:
                    self._note("finishing the drop of %s" % seg[4])
                    self._delete(seg)
        last = self._segs[-1] if self._segs else None
        self._open = bool(last) and not torn and last[2] < self.seg_records and last[3] < self.seg_bytes
        self.last_seq = max([self.last_seq, self.acked_seq] + [g[1] for g in self._segs])
        if not best and self._segs and self._segs[0][0] > 1:
            self._note("no snapshot: counters rebuilt from the surviving records only")
        meta = _read_json(self._p("meta"))
        if isinstance(meta, dict) and isinstance(meta.get("id"), str):
            self.store_id, self.boot = meta["id"], max(self.boot, _int(meta.get("boot")))
            return
        self.store_id = snap.get("id") if isinstance(snap.get("id"), str) else _new_id()
        if best or self._segs:  # the id comes back from a snapshot, else the store gets a new one
            self._note("store meta lost; id %s" % ("kept" if "id" in snap else "renewed"))
        self.boot_up(0)  # the store is born here, before any record can be appended

    def _scan(self, name, fn):
        """fn(seq, line, index of the space) for each whole line until fn returns True; True if torn."""
        with open(self._p(name), "rb") as f:
            while True:
                line = f.readline()
                if not line or line[-1:] != b"\n":
                    return bool(line)
                sp = line.find(b" ")
                try:
                    if fn(int(line[:sp]), line, sp):
                        return False
                except (ValueError, TypeError, AttributeError, KeyError, IndexError):  # a corrupt line
                    pass

    def boot_up(self, n=1):
        """Count this boot durably (n=0: only save the id); returns the boot number."""
        self.boot += n
        _write(self._p("meta"), json.dumps({"id": self.store_id, "boot": self.boot}).encode())
        return self.boot

    def config(self):
        """The device config (dict), or None."""
        c = _read_json(self.root + "/config.json")
        return c if isinstance(c, dict) else None

    def write_config(self, cfg):
        _write(self.root + "/config.json", json.dumps(cfg).encode())

    def save_table(self, payload, version, sig=None):
        """Atomically replace the table with `payload` of `version`: the signed envelope, or the
        body alone with its signature `sig` (kept in the header line)."""
        payload = payload.encode() if isinstance(payload, str) else payload
        head = {"version": int(version), "len": len(payload), "crc": _crc(payload)}
        if sig:
            head["sig"] = sig
        head = json.dumps(head)
        with open(self.root + "/table.json.tmp", "wb") as f:
            f.write(head.encode() + b"\n")
            f.write(payload)
        os.rename(self.root + "/table.json.tmp", self.root + "/table.json")
        self._table = int(version)

    def load_table(self):
        """The stored table payload (bytes) when whole and intact, else None."""
        self._table = None
        self.table_sig = None
        try:
            with open(self.root + "/table.json", "rb") as f:
                h, b = json.loads(f.readline()), f.read()
            if len(b) != h["len"] or _crc(b) != h["crc"]:
                raise ValueError("length or crc")
            self._table = int(h["version"])
            self.table_sig = h.get("sig")
            return b
        except OSError:
            return None  # no table stored yet
        except Exception as e:
            self._note("table file damaged %r" % (e,))

    def table_version(self):
        """Version of the stored table, or None."""
        if self._table is None:
            self.load_table()
        return self._table

    def unacked(self):
        a = self.acked_seq
        return sum(s[2] if a < s[0] else max(0, s[1] - a) for s in self._segs)

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

    def _append(self, rec):
        seq = self.last_seq + 1
        r = dict(rec)
        r.pop("seq", None)  # the seq is the line's prefix
        line = ("%d " % seq).encode() + json.dumps(r).encode() + b"\n"
        if not self._open:
            self._segs.append([seq, seq - 1, 0, 0, "o%d" % seq])
            self._open = True
        seg = self._segs[-1]
        try:
            with open(self._p(seg[4]), "ab" if seg[2] else "wb") as f:  # "wb": drop a torn left-over
                f.write(line)
        except OSError:
            self._open = False  # never append after what may be a torn tail
            if not seg[2]:
                self._segs.pop()
            raise
        self.last_seq = seg[1] = seq
        seg[2] += 1
        seg[3] += len(line)
        count(self.counters, r)
        if seg[2] >= self.seg_records or seg[3] >= self.seg_bytes:
            self._open = False
            self._snapshot()
            self._free()
        return seq

    def _room(self, at):
        for _ in range(4):  # drop the oldest unacked segment while the outbox is full
            if self.unacked() < self.max_records or not self._drop_oldest(at):
                return

    def _drop_oldest(self, at):
        old = [g for g in self._segs[: len(self._segs) - self._open] if g[1] > self.acked_seq]
        if not old:
            return False
        seg, a, b = old[0], max(old[0][0], self.acked_seq + 1), old[0][1]
        n = [0, 0, a]  # calls, counts of the drop records it supersedes, first seq
        def each(seq, line, sp):
            r = json.loads(line[sp + 1:]) if seq >= a else {}
            if r.get("t") == "call":
                n[0] += 1
            elif r.get("t") == "dropped":
                n[1] += _int(r.get("count"))
                n[2] = min(n[2], _int(r.get("first_seq")) or a)
        self._scan(seg[4], each)
        while min(self._snap) < b:  # both snapshots must cover the segment before it goes
            self._snapshot()
        d = {"t": "dropped", "count": n[0] + n[1], "first_seq": n[2], "last_seq": b, "at": at or 0}
        if n[1]:
            d["superseded"] = n[1]
        self._append(d)  # the record first: a boot finishes a drop cut short after it
        self._delete(seg)
        return True

    def pending(self, limit=50, max_bytes=8192):
        """Unacked records in seq order, each with its "seq"; at least one if there is any."""
        out, size = [], [0]
        def each(seq, line, sp):
            if seq > self.acked_seq:
                if out and (len(out) >= limit or size[0] + len(line) > max_bytes):
                    return True
                out.append(json.loads(line[sp + 1:]))
                out[-1]["seq"], size[0] = seq, size[0] + len(line)
        for seg in self._segs:
            if len(out) >= limit or size[0] >= max_bytes:
                break
            if seg[1] > self.acked_seq:
                self._scan(seg[4], each)
        return out

    def ack(self, seq, store_id=None):
        """The controller holds every record <= seq: free them. False when nothing changes."""
        if store_id is not None and store_id != self.store_id:
            return False
        seq = min(_int(seq), self.last_seq)
        if seq <= self.acked_seq:
            return False
        self.acked_seq = seq
        _write(self._p("ack"), b"%d" % seq)
        self._free()
        return True

    def _snapshot(self):
        i = 0 if self._snap[0] <= self._snap[1] else 1  # replace the older (or invalid) slot
        _write(self._p("snap%d" % i), json.dumps({"seq": self.last_seq, "acked": self.acked_seq, "id": self.store_id,
                                                  "boot": self.boot, "c": self.counters}).encode())
        self._snap[i] = self.last_seq

    def _free(self):
        """Delete the closed segments that are acked and covered by both snapshots."""
        lim = min(self.acked_seq, min(self._snap))
        while len(self._segs) > self._open and self._segs[0][1] <= lim:  # never the open one
            self._delete(self._segs[0])

    def _delete(self, seg):
        self._segs.remove(seg)
        os.remove(self._p(seg[4]))
