"""Flash store (firmware/gw/store.py) on the emulated flash (firmware/gw/blockdev.py).

The store runs on the real MicroPython binary over a file-backed LittleFS image; power cuts come
from the block device (`cut_after N`: the N-th write-or-erase lands partially, then the board stops
and is SIGKILLed). The power-cut sweeps cut every block operation of a scenario, boot again on the
same image and check what survived against what the firmware had been told before the cut.
"""

import copy
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import zlib

import pytest

from emulator import micropython

REPO = micropython.REPO
FIRMWARE = REPO / "firmware"
MPY = REPO / "tests" / "firmware" / "mpy"
OPS = MPY / "store_ops.py"
HEAP = "220K"  # an ESP32 with ~110 KB free, doubled for the 64-bit unix port

for p in (str(FIRMWARE), str(MPY)):
    if p not in sys.path:
        sys.path.insert(0, p)

import store_api  # noqa: E402  (tests/firmware/mpy: also runs on CPython)
import store_ops  # noqa: E402

from gw.store import count  # noqa: E402

pytestmark = pytest.mark.micropython


def mpy(work, *args):
    proc = micropython.run(OPS, str(work), *args, heap=HEAP, extra_path=[FIRMWARE], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def run_cut(work, args, n, seed):
    """Boot with a power cut armed at op n; returns (lines printed before the cut, cut?)."""
    (work / "ctl").write_text("cut_after %d seed %d\n" % (n, seed))
    env = dict(os.environ, MICROPYPATH=micropython.search_path(FIRMWARE))
    proc = subprocess.Popen(micropython.command(OPS, str(work), *args, heap=HEAP), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=REPO)
    out, deadline = b"", time.monotonic() + 30
    try:
        while b"POWER-CUT\n" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        cut = b"POWER-CUT\n" in out
        if cut:
            assert proc.poll() is None, "after POWER-CUT the board runs nothing more, but stays up"
            proc.send_signal(signal.SIGKILL)
        assert cut or proc.wait(10) == 0, out.decode() + proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    (work / "ctl").unlink()
    lines = out.decode().splitlines()
    return lines[: lines.index("POWER-CUT")] if cut else lines, cut


def parse(lines):
    got = {"boot": None, "calls": {}, "tables": [], "acks": [], "state": None}
    for line in lines:
        w = line.split()
        if w[0] == "BOOT":
            got["boot"] = (int(w[1]), w[2])
        elif w[0] == "STATE":
            got["state"] = json.loads(line[6:])
        elif w[:2] == ["OK", "call"]:
            got["calls"][int(w[2])] = int(w[3])
        elif w[:2] == ["OK", "table"]:
            got["tables"].append(int(w[2]))
        elif w[:2] == ["OK", "ack"]:
            got["acks"].append(int(w[2]))
    return got


def stats(work):
    st = json.loads((work / "stats").read_text())
    return st["writes"] + st["erases"]


def table_id(version, size):
    payload = store_ops.table_payload(version, size)
    return [version, len(payload), zlib.crc32(payload)]


class Scenario:
    def __init__(self, name, args, base_ops, ops, tables):
        self.name, self.args, self.base_ops, self.ops = name, list(args), list(base_ops), list(ops)
        self.tables = [table_id(v, size) for v, size in tables]  # the table before, the table after

    def first_n(self):
        return min(int(op.split(":")[1]) for op in self.ops if op.startswith("call:"))


SCENARIOS = [
    # a table update, five calls, an ack of everything: the everyday path
    # (each ends with an append, so that a cut also comes after the ack / the op before it returned)
    Scenario("table_calls_ack", [], ["table:1:3000", "call:0:30", "ack:10"],
             ["table:2:5000", "call:30:5", "ack:last", "call:35:1"], [(1, 3000), (2, 5000)]),
    # a full outbox: the oldest segment is dropped (snapshots, a dropped record, a delete)
    Scenario("outbox_full_drop", ["max=24"], ["call:0:22"], ["call:22:6", "counters:1469100000", "call:28:1"], []),
    # records wait in slots, move into a segment 8 at a time, or with one too big for a slot (the alarm);
    # the base leaves 5 in their slots for the boot to take back
    Scenario("slots_to_segments", [], ["call:0:5"], ["call:5:9", "alarm:600", "call:14:2", "ack:last", "call:16:1"],
             []),
    # the first boot on a blank image: format, the store is born, first records
    Scenario("first_boot", [], [], ["call:0:3", "ack:2", "call:3:1"], []),
]


@pytest.fixture(scope="module", params=SCENARIOS, ids=lambda s: s.name)
def prepared(request, tmp_path_factory):
    sc = request.param
    base = tmp_path_factory.mktemp("base-" + sc.name)
    before = {"calls": {}, "state": None}
    if sc.base_ops:  # the state is read on a copy: a boot moves staged records, and the cut run must do that
        ran = mpy(base, *sc.args, *sc.base_ops)
        seen = tmp_path_factory.mktemp("seen-" + sc.name)
        for f in base.iterdir():
            shutil.copy(f, seen / f.name)
        before = parse(ran + mpy(seen, *sc.args, "dump"))
    dry = tmp_path_factory.mktemp("dry-" + sc.name)
    for f in base.iterdir():
        shutil.copy(f, dry / f.name)
    n0 = stats(dry) if (dry / "stats").exists() else 0
    mpy(dry, *sc.args, *sc.ops)
    return sc, base, before, stats(dry) - n0


def check_after_cut(sc, before, conf, st):
    """What a boot after the cut finds, against what the firmware was told before it."""
    b = before["state"] or {"id": None, "boot": 0, "last_seq": 0, "acked_seq": 0, "table_version": None,
                            "counters": {"calls": 0, "dropped": 0, "routes": {}, "targets": {}}}
    if b["id"]:
        assert st["id"] == b["id"], "the store id never changes"
    if conf["boot"]:  # the store was open: its id and this boot are on flash
        assert st["id"] == conf["boot"][1] and st["boot"] > conf["boot"][0]
    if sc.tables:
        allowed = sc.tables[-1:] if conf["tables"] else sc.tables
        assert [st["table_version"], st["table_len"], st["table_crc"]] in allowed, "table old or new, whole"
    known = dict(before["calls"])  # seq -> n of every call whose append returned
    known.update(conf["calls"])
    acked = st["acked_seq"]
    assert st["last_seq"] >= max([b["last_seq"], *known]), "last_seq never goes back"
    assert b["acked_seq"] <= acked <= st["last_seq"]
    assert not conf["acks"] or acked >= conf["acks"][-1], "a returned ack is durable"
    pend = st["pending"]
    seqs = [r["seq"] for r in pend]
    assert seqs == sorted(set(seqs)) and all(s > acked for s in seqs), seqs
    ns = [r["n"] for r in pend if r["t"] == "call"]
    assert len(ns) == len(set(ns)), "no record twice"
    by_seq = {r["seq"]: r for r in pend}
    drops = [r for r in pend if r["t"] == "dropped"]
    scen_ns = sorted(conf["calls"].values())
    for r in pend:
        if r["t"] != "call":
            continue
        assert r == dict(store_ops.call_record(r["n"]), seq=r["seq"]), r
        if r["seq"] in known:
            assert known[r["seq"]] == r["n"]
        else:  # the call whose append was cut: it may or may not be there, but only as the next one
            assert r["n"] == (scen_ns[-1] + 1 if scen_ns else sc.first_n()) and r["seq"] > max(known, default=0)
    lost = [seq for seq in known if seq > acked and seq not in by_seq]
    for seq in known:
        if seq > acked and seq in by_seq:
            assert by_seq[seq]["n"] == known[seq]
    for seq in lost:  # a returned append survives, or its loss is visible in a dropped record
        assert any(d["first_seq"] <= seq <= d["last_seq"] for d in drops), (seq, drops)
    existing = {seq: store_ops.call_record(n) for seq, n in known.items()}
    existing.update(by_seq)
    expected = copy.deepcopy(b["counters"])
    for seq in sorted(existing):
        if seq > b["last_seq"]:
            count(expected, existing[seq])
    assert st["counters"] == expected, "counters = what the records say, never going back"
    assert st["counters"]["dropped"] == len(lost) + b["counters"]["dropped"]
    assert sum(d["count"] for d in drops) == st["counters"]["dropped"]


def test_power_cut_sweep(prepared, tmp_path):
    sc, base, before, total = prepared
    assert total > 10
    if total <= 400:
        cuts = list(range(1, total + 1))
    else:  # sample, but keep the start and the end (boot, the last ack) whole
        cuts = sorted(set(range(1, 40)) | set(range(40, total - 40, total // 300)) | set(range(total - 40, total + 1)))
    work = tmp_path / "w"
    base_last = before["state"]["last_seq"] if before["state"] else 0
    seen = {"cut": 0, "table_new": 0, "in_flight_kept": 0, "dropped": 0}
    t0 = time.monotonic()
    seeds = int(os.environ.get("CITYGATE_SWEEP_SEEDS", "1"))  # more seeds: other partial writes
    for n, seed in [(n, n * 31 + k) for k in range(seeds) for n in cuts]:
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(base, work)
        lines, cut = run_cut(work, [*sc.args, *sc.ops], n, seed)
        assert cut, "op %d of %d did not cut" % (n, total)
        conf = parse(lines)
        after = parse(mpy(work, *sc.args, "dump"))["state"]
        try:
            check_after_cut(sc, before, conf, after)
        except AssertionError as e:
            raise AssertionError("%s: cut at op %d of %d (seed %d): %s\nbefore the cut: %s\nafter: %s"
                                 % (sc.name, n, total, seed, e, lines, json.dumps(after)[:3000])) from e
        seen["cut"] += 1
        seen["table_new"] += bool(sc.tables) and after["table_version"] == sc.tables[-1][0]
        seen["in_flight_kept"] += any(r["t"] == "call" and r["seq"] not in conf["calls"] and r["seq"] > base_last
                                      for r in after["pending"])
        seen["dropped"] += after["counters"]["dropped"] > 0
    print("\nsweep %s: %d cuts of %d ops in %.1f s, %s" % (sc.name, len(cuts), total, time.monotonic() - t0, seen))
    assert seen["cut"] == len(cuts) * seeds
    if sc.name == "outbox_full_drop":
        assert seen["dropped"] > 0


def test_power_cut_stops_the_board(tmp_path):
    (tmp_path / "ctl").write_text("cut_after 7 seed 1\n")
    env = dict(os.environ, MICROPYPATH=micropython.search_path(FIRMWARE))
    proc = subprocess.Popen(micropython.command(OPS, str(tmp_path), "call:0:5", heap=HEAP), stdout=subprocess.PIPE,
                            env=env, cwd=REPO)
    try:
        assert proc.stdout.readline() == b"POWER-CUT\n", "op 7 comes while the store is being born"
        time.sleep(0.3)
        assert proc.poll() is None, "the board stops, it does not exit"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    # the counters went to the stats file up to the op that lost power; the cut is spent
    assert stats(tmp_path) == 7 and (tmp_path / "ctl").read_text().split() == ["fired", "7"]
    st = parse(mpy(tmp_path, "call:0:2", "dump"))["state"]
    assert st["last_seq"] == 2 and st["boot"] >= 1 and st["counters"]["calls"] == 2


@pytest.mark.parametrize("case", [f.__name__ for f in store_api.CASES])
def test_store_api_on_micropython(case, tmp_path):
    proc = micropython.run(MPY / "store_api.py", str(tmp_path), case, heap=HEAP, extra_path=[FIRMWARE])
    assert proc.returncode == 0 and "PASS " + case in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", store_api.CASES, ids=lambda f: f.__name__)
def test_store_api_on_cpython(case, tmp_path):
    case(str(tmp_path))


def test_erases_per_call_record(tmp_path):
    lines = mpy(tmp_path, "wear:500:50")
    wear = dict(kv.split("=") for kv in lines[-1].split()[1:])
    print("\n" + lines[-1])
    assert float(wear["erases_per_call"]) <= 0.5, lines[-1]  # issue 14: at most 1.0; 0.22 measured
    st = parse(mpy(tmp_path, "dump"))["state"]
    assert st["last_seq"] == 500 and st["acked_seq"] == 500 and st["counters"]["calls"] == 500
