"""Cumulative counters of the store (DESIGN §6, `counters` records): what a record adds to them, and their
snapshots, `store/snap0` and `store/snap1`, each `{"seq": S, "acked", "id", "boot", "c": counters}` = the
counters after every record up to seq S. A new snapshot replaces the older (or unreadable) slot, so a power
cut while writing one leaves the other. Counters at boot = the best valid snapshot + a replay of the records
after its S. The host side (tests) counts with the same `count`.
"""

import json

from .flashio import read_json, write_atomic

TRY_RESULTS = ("answered", "busy", "no_answer", "failed")
MAX_TURNS = 64  # round-robin turns kept (gw.calls bounds them too)
SNAP_TYPES = (("calls", int), ("dropped", int), ("routes", dict), ("targets", dict))


def new_counters():
    return {"calls": 0, "dropped": 0, "routes": {}, "targets": {}}


def as_int(v):
    """v as an int, 0 when it is not one (hostile or torn input never raises here)."""
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _inc(d, k, n=1):
    d[k] = d.get(k, 0) + n


def count(c, r):
    """Add record r to counters c: routes[id] {"calls", <outcome>, "talk_s"}, targets[id] {"attempts", <TRY_RESULTS>,
    "talk_s"} (absent = 0) from r["tries"] [[target, result], ...], else one attempt for r["target"]."""
    t = r.get("t")
    if t == "dropped":  # `count` includes the counts of the older drop records it supersedes
        c["dropped"] += as_int(r.get("count")) - as_int(r.get("superseded"))
    if t != "call":
        return
    c["calls"] += 1
    talk, tg = as_int(r.get("talk_s")), r.get("target")
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


def valid_snapshot(s):
    """True when s is a whole counter snapshot `{"seq": int, "c": {...}}` of the right types."""
    try:
        return type(s["seq"]) is int and all(type(s["c"][k]) is t for k, t in SNAP_TYPES)
    except Exception:
        return False


class Snapshots:
    def __init__(self, directory):
        self.dir = directory
        self.seqs = [-1, -1]  # S of each slot, -1 = none or invalid
        self.turns = {}  # the call machine's round-robin turns, carried along (gw.calls; lost: a turn restarts)

    def _path(self, i):
        return self.dir + "/snap%d" % i

    def load(self, names, note):
        """The newest valid snapshot (dict) or None; `names`: the files in the store's directory."""
        best = None
        for i in (0, 1):
            s = read_json(self._path(i))
            if valid_snapshot(s):
                self.seqs[i] = s["seq"]
                best = s if best is None or s["seq"] > best["seq"] else best
            elif "snap%d" % i in names:
                note("snapshot %d unreadable" % i)
        t = best.get("turns") if best else None
        if isinstance(t, dict) and len(t) <= MAX_TURNS:
            self.turns.update((k, v) for k, v in t.items() if type(v) is int and v >= 0)
        return best

    def covered(self):
        """The highest seq that BOTH slots cover (a segment may go only once both do)."""
        return min(self.seqs)

    def write(self, seq, acked, store_id, boot, counters):
        i = 0 if self.seqs[0] <= self.seqs[1] else 1  # replace the older (or invalid) slot
        write_atomic(self._path(i), json.dumps({"seq": seq, "acked": acked, "id": store_id, "boot": boot,
                                                "c": counters, "turns": self.turns}).encode())
        self.seqs[i] = seq
