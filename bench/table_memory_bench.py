"""Bench: the heap the board's table loader needs for the largest valid table (issue 8, issue 14).

The path a table takes on the board, run on the real `micropython` binary (64-bit unix port: objects
are about twice their ESP32 size, hence the profile's 220K): the sealed envelope is streamed to a file
(gw.tablein: body unescaped, HMAC and SHA-256 on the way), checked, then loaded from the file a member
at a time (gw.bodyfile -> protocols.table.load_from). Code comes from the firmware's ROMFS build, as on
the emulated board (`--code source` compiles the sources instead).

Prints, for a 32 KiB body of one of the shapes (default: 1,000 deny prefixes and full routes):
- heap after each step (gc.mem_alloc after a collect) and the largest free block (micropython.mem_info),
- what the loaded Table keeps, split into deny, targets, routes (protocols.routeset: the columns in blocks,
  the ids' text, the target lists' packed indexes (protocols.targetlists) and the shared tuples), callers
  (the routes' packed caller prefixes, protocols.callerset), closed (the table's closed dates), menus,
  probes and the rest (a route's calendars are in its routes' share),
- need: the least free heap with which stream + check + load succeed, found by bisection (a chain
  of small tuples takes the rest of the heap, holes first, so the free heap is one piece at the top),
  and transient = need - kept: what loading costs beyond the table itself,
- the time each step took on this host.
The last line is `key=value` pairs.

    python bench/table_memory_bench.py [--code build|source] [--deny 1000] [--shape NAME]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emulator import micropython  # noqa: E402
from hil_tests import tables, v11_tables  # noqa: E402
from protocols import routing  # noqa: E402

GW = "gw-bench-1"
KEY = bytes(range(32))
HEAD = 192  # gw.store.TABLE_HEAD: the blank header line a streamed table is written behind

# Runs on MicroPython: argv = code (romfs image path or "source"), payload, work dir, mode ("steps" or a
# number: the free heap to leave before loading).
BOARD_SIDE = r'''
import sys, gc, os, time, micropython
code, payload, work, mode = sys.argv[1:5]
if code == "source":
    sys.path.insert(0, "@REPO@/firmware")
    sys.path.insert(0, "@REPO@")
else:
    import vfs
    _rom = bytearray(os.stat(code)[6])
    with open(code, "rb") as f:
        f.readinto(_rom)
    vfs.mount(vfs.VfsRom(_rom), "/rom")
    sys.path.insert(0, "/rom/lib")
gc.collect()
base = gc.mem_alloc()
from protocols import routing, table
gc.collect()
boot_code_heap = gc.mem_alloc() - base
base = gc.mem_alloc()
from gw.tablein import TableIn  # the streaming loader (gw.tables imports it)
from gw import bodyfile
from protocols import jsonstrict
gc.collect()
code_heap = gc.mem_alloc() - base

def step(name, t0):
    gc.collect()
    ms = time.ticks_diff(time.ticks_ms(), t0)
    print("step %s alloc=%d free=%d ms=%d" % (name, gc.mem_alloc(), gc.mem_free(), ms))
    micropython.mem_info()

def run():
    t0 = time.ticks_ms()
    tin = TableIn(work + "/stage", bytes(range(32)), os.stat(payload)[6], @HEAD@)
    buf = bytearray(512)
    with open(payload, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            tin.write(buf, k)
    tin.end()
    if tin.error:
        raise MemoryError(repr(tin.error))
    if mode == "steps":
        step("streamed", t0)
    t0 = time.ticks_ms()
    sig, sha = tin.check()
    if mode == "steps":
        step("checked", t0)
    t0 = time.ticks_ms()
    t = bodyfile.load(tin.path, @HEAD@, tin.len, "@GW@", 1, sha256=sha)
    return t, t0

if mode == "steps":
    import struct
    print("block_bytes=%d" % (4 * struct.calcsize("P")))  # MicroPython's GC block: 4 words
    print("code_heap=%d" % code_heap)
    print("boot_code_heap=%d" % boot_code_heap)
    step("start", time.ticks_ms())
    before = gc.mem_alloc()
    t, t0 = run()
    step("loaded", t0)
    kept = gc.mem_alloc() - before
    for part in ("_deny", "targets", "routes", "caller_chunks", "closed", "menus", "probes"):
        a = gc.mem_alloc()
        setattr(t, part, None)
        gc.collect()
        print("kept_%s=%d" % (part.strip("_").replace("caller_chunks", "callers"), a - gc.mem_alloc()))
    print("kept=%d" % kept)
else:
    want = int(mode)
    chain = None
    while True:  # small tuples fill the holes first, then the top: what is left is one free piece
        gc.collect()
        free = gc.mem_free()
        if free <= want:
            break
        for _ in range(min(256, max(1, (free - want) // 32))):
            chain = (chain,)
    gc.collect()
    free0 = gc.mem_free()
    try:
        t, t0 = run()
        print("fits free=%d" % free0)
    except MemoryError as e:
        print("short free=%d %s" % (free0, e))
    except Exception as e:
        print("short free=%d %r" % (free0, e))
'''


def board_run(script: Path, code: str, payload: Path, work: Path, mode: str, heap: str) -> str:
    r = subprocess.run([micropython.binary(), "-X", f"heapsize={heap}", str(script), code, str(payload), str(work),
                        mode], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"micropython failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def need(script, code, payload, work, heap: str, lo: int = 20_000, hi: int = 300_000, step: int = 512) -> int:
    """The least free heap (to `step` bytes) with which the table loads."""
    if "fits" not in board_run(script, code, payload, work, str(hi), heap):
        raise SystemExit(f"the table does not load even with {hi} B free")
    while hi - lo > step:
        mid = (lo + hi) // 2
        if "fits" in board_run(script, code, payload, work, str(mid), heap):
            hi = mid
        else:
            lo = mid
    return hi


SHAPES = {  # name: (generator in hil_tests.tables, what it is)
    "deny": (tables.big_table, "full routes (callers, hours, schedules) and --deny prefixes"),
    "routes": (tables.route_heavy_table, "as many one-caller routes as fit (480)"),
    "bare": (tables.bare_routes_table, "as many routes without callers as fit (742)"),
    "callers": (tables.many_callers_table, "routes of 40 caller prefixes each"),
    "targets": (tables.distinct_routes_table, "small routes, each its own target list"),
    **v11_tables.SHAPES,  # contract v1.1 fields (calendars, menus, probes), many targets, ids at their maxima
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", choices=("build", "source"), default="build")
    ap.add_argument("--deny", type=int, default=1000)
    ap.add_argument("--heap", default="1M", help="-X heapsize of the runs (the bisection leaves less free)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="deny",
                    help="; ".join(f"{k}: {v[1]}" for k, v in sorted(SHAPES.items())))
    args = ap.parse_args()

    make = SHAPES[args.shape][0]
    body = make(GW, deny=args.deny, version=2) if args.shape == "deny" else make(GW, version=2)
    table = routing.load(body)
    if args.code == "build":
        from emulator.firmware import image

        code = str(image())
    else:
        code = "source"
    with tempfile.TemporaryDirectory(prefix="table-memory-") as tmp:
        work = Path(tmp)
        payload = work / "payload"
        payload.write_bytes(routing.seal(body, KEY))
        script = work / "board_side.py"
        script.write_text(BOARD_SIDE.replace("@REPO@", str(REPO)).replace("@HEAD@", str(HEAD)).replace("@GW@", GW))
        out = board_run(script, code, payload, work, "steps", args.heap)
        needed = need(script, code, payload, work, args.heap)

    figures = dict((k, int(v)) for k, v in re.findall(r"^(\w+)=(\d+)$", out, re.M))
    blocks = [int(b) for b in re.findall(r"max free sz: (\d+)", out)]
    print(f"table: {len(body)} B body, {len(table.routes)} routes, {len(table.targets)} targets, "
          f"{len(table.deny)} deny prefixes; code from the {args.code}")
    print(f"heap taken by importing code (all at boot on the board): protocols.routing and .table "
          f"{figures['boot_code_heap']} B, the streaming loader (gw.tablein, gw.bodyfile, gw.jstream, "
          f"protocols.jsonstrict) {figures['code_heap']} B")
    steps = re.findall(r"step (\w+) alloc=(\d+) free=(\d+) ms=(\d+)", out)
    for (name, alloc, free, ms), blk in zip(steps, blocks, strict=True):
        print(f"  {name:9s} heap used {int(alloc):7d} B, free {int(free):7d} B, largest free piece "
              f"{blk * figures['block_bytes']:7d} B, step took {ms} ms")
    kept = figures["kept"]
    parts = ("deny", "targets", "routes", "callers", "closed", "menus", "probes")
    rest = kept - sum(figures["kept_" + p] for p in parts)
    print(f"the loaded table keeps {kept} B: " + ", ".join(f"{p} {figures['kept_' + p]}" for p in parts)
          + f", rest {rest}")
    print(f"stream + check + load need {needed} B free: {needed - kept} B beyond what the table keeps")
    times = dict((n, int(ms)) for n, _, _, ms in re.findall(r"step (\w+) alloc=(\d+) free=(\d+) ms=(\d+)", out))
    print(f"shape={args.shape} code={args.code} body_bytes={len(body)} routes={len(table.routes)} "
          f"deny={len(table.deny)} "
          f"loader_code_heap={figures['code_heap']} kept={kept} kept_deny={figures['kept_deny']} "
          f"kept_targets={figures['kept_targets']} kept_routes={figures['kept_routes']} "
          f"kept_callers={figures['kept_callers']} kept_closed={figures['kept_closed']} "
          f"kept_menus={figures['kept_menus']} kept_probes={figures['kept_probes']} need_free={needed} "
          f"transient={needed - kept} stream_ms={times['streamed']} check_ms={times['checked']} "
          f"load_ms={times['loaded']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
