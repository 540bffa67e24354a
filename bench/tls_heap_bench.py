"""Bench: what mqtts:// costs the board in memory (issue 14, "Also"), on the esp32-2gsm profile (220K).

Two places hold TLS memory, and they are counted apart:
- the MicroPython heap (what the profile's 220K emulates: the unix port is 64-bit, objects about
  twice their ESP32 size): the SSLContext and SSLSocket objects (mbedTLS's context structs live inside
  them), the CA in DER, the stream, and the gw.tls and ssl modules (imported only for mqtts://).
  Measured with gc.mem_alloc() after a collect, and the lowest gc.mem_free() seen by a task polling
  every millisecond while the session runs (lowest of 3 runs: a poll can miss it).
- mbedTLS's own buffers and handshake state, which it takes with calloc(): the C heap on the unix port,
  ESP-IDF's heap on an ESP32 (outside the MicroPython heap). Counted by a malloc shim preloaded into the
  process (built here with gcc; without gcc these figures are left out): live and peak bytes.

One connection at a time, plain (mqtt://) then TLS (mqtts://, a 2048-bit RSA chain made here by
tests/tlscerts.py), each: connect, subscribe, a 20,000-byte QoS 1 message out and back in (16 KiB TLS
records), disconnect. Code comes from the firmware's ROMFS build, as on the emulated board. Then a whole
emulated board (esp32-2gsm) online over each, with a table: its own heap_free / heap_min_free.
The last line is `key=value` pairs.

    python bench/tls_heap_bench.py [--no-board]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller.brokers import Mosquitto, free_port, wait_port  # noqa: E402
from emulator import firmware, micropython  # noqa: E402
from firmware.gw import profiles  # noqa: E402
from tests import tlscerts  # noqa: E402

PROFILE = "esp32-2gsm"
KEY = "5a" * 32
RUNS = 3

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static long live, peak;
static void add(void *p) {
    if (p) {
        long v = __atomic_add_fetch(&live, (long)malloc_usable_size(p), __ATOMIC_RELAXED);
        if (v > peak) peak = v;
    }
}
static void sub(void *p) { if (p) __atomic_sub_fetch(&live, (long)malloc_usable_size(p), __ATOMIC_RELAXED); }
void *malloc(size_t n) { void *p = __libc_malloc(n); add(p); return p; }
void *calloc(size_t a, size_t b) { void *p = __libc_calloc(a, b); add(p); return p; }
void free(void *p) { sub(p); __libc_free(p); }
void *realloc(void *p, size_t n) {
    sub(p);
    void *q = __libc_realloc(p, n);
    if (q) add(q); else if (p && n) add(p);  /* failed: the old block stays */
    return q;
}
void *memalign(size_t a, size_t n) { void *p = __libc_memalign(a, n); add(p); return p; }
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    void *p = __libc_memalign(a, n);
    if (!p) return 12;
    add(p);
    *out = p;
    return 0;
}
void *valloc(size_t n) { return memalign(4096, n); }
/* MicroPython reads the counters through os.getenv: "live peak"; the second name restarts the peak. */
static char text[64];
char *getenv(const char *name) {
    static char *(*real)(const char *);
    if (strcmp(name, "CITYGATE_MALLOC") == 0) { snprintf(text, sizeof text, "%ld %ld", live, peak); return text; }
    if (strcmp(name, "CITYGATE_MALLOC_RESET") == 0) { peak = live; return "reset"; }
    if (!real) real = (char *(*)(const char *))dlsym(RTLD_NEXT, "getenv");
    return real(name);
}
"""

# Runs on MicroPython: argv = romfs image, host, port, CA file ("-" for plain mqtt://).
BOARD_SIDE = r"""
import sys, gc, os, vfs, asyncio, time
code, host, port, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
_rom = bytearray(os.stat(code)[6])
with open(code, "rb") as f:
    f.readinto(_rom)
vfs.mount(vfs.VfsRom(_rom), "/rom")
sys.path.insert(0, "/rom/lib")
from gw.mqtt import MQTTClient

def native():
    v = os.getenv("CITYGATE_MALLOC")
    return [int(x) for x in v.split()] if v and v[0].isdigit() else [0, 0]

pem = None
if ca != "-":
    with open(ca) as f:
        pem = f.read()
low = [1 << 30]

async def watch(stop):
    while not stop:
        f = gc.mem_free()
        if f < low[0]:
            low[0] = f
        await asyncio.sleep_ms(1)

async def main():
    got = asyncio.Event()
    gc.collect()
    a0, free0, n0 = gc.mem_alloc(), gc.mem_free(), native()[0]
    os.getenv("CITYGATE_MALLOC_RESET")
    stop = []
    asyncio.create_task(watch(stop))
    ctx = None
    if pem:  # the board imports gw.tls (and ssl) only for an mqtts:// broker: counted here
        from gw import tls
        ctx = tls.context(pem)
    c = MQTTClient("bench-tls", host, port, keepalive=30, clean_session=True, ssl=ctx,
                   on_message=lambda t, p, r: got.set())
    del ctx
    t0 = time.ticks_ms()
    await c.connect(10000)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    gc.collect()
    live, peak = native()
    print("connected_alloc=%d native_live=%d native_peak_connect=%d connect_ms=%d" % (
        gc.mem_alloc() - a0, live - n0, peak - n0, ms))
    await c.subscribe("bench/echo", 1)
    payload = bytes(20000)
    await c.publish("bench/echo", payload, qos=1, timeout_ms=10000)
    del payload
    await asyncio.wait_for_ms(got.wait(), 10000)
    gc.collect()
    live, peak = native()
    print("session_alloc=%d native_live_session=%d native_peak=%d" % (gc.mem_alloc() - a0, live - n0, peak - n0))
    await c.disconnect()
    c = None
    stop.append(1)
    await asyncio.sleep_ms(5)
    gc.collect()
    print("closed_alloc=%d native_after_close=%d low_free=%d start_free=%d" % (
        gc.mem_alloc() - a0, native()[0] - n0, low[0], free0))

asyncio.run(main())
"""


def kv(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        for part in line.split():
            if "=" in part:
                k, v = part.split("=", 1)
                out[k] = int(v)
    return out


def run_client(work: Path, image: Path, heap: str, port: int, ca: str, shim: Path | None) -> dict[str, int]:
    script = work / "tls_board_side.py"
    script.write_text(BOARD_SIDE)
    env = dict(os.environ, MICROPYPATH=".frozen")
    if shim is not None:
        env["LD_PRELOAD"] = str(shim)
    r = subprocess.run(micropython.command(script, str(image), "127.0.0.1", str(port), ca, heap=heap),
                       capture_output=True, text=True, timeout=120, env=env, cwd=work)
    if r.returncode != 0:
        raise SystemExit(f"micropython failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return kv(r.stdout)


def board_heap(broker_url: str, peer_url: str, ca_pem: str | None) -> dict[str, int]:
    """An esp32-2gsm board online with a table over `broker_url`: its reported heap figures."""
    from emulator.board import EmulatedRig
    from hil_tests.peer import ControllerPeer

    gw = "gw-bench-tls" if ca_pem else "gw-bench-plain"
    body = {"schema": 1, "gateway": gw, "version": 1, "issued_at": 1790000000, "tz": "UTC0", "deny": [],
            "closed": [], "targets": {"centre": {"number": "+380629000001", "via": ["gsm2"], "ring_timeout_s": 3}},
            "routes": [{"id": "basic", "port": "*", "caller": ["+380"], "targets": ["centre"]}]}
    with ControllerPeer(peer_url, client_id=f"bench-peer-{gw}") as peer, \
            EmulatedRig(gw, KEY, broker_url, profile=PROFILE, broker_ca=ca_pem) as rig:
        peer.wait_state(gw, timeout=60)
        peer.push_table(gw, json.dumps(body).encode(), KEY)
        peer.wait_ack(gw, 1, timeout=60)
        peer.command(gw, "resend_state")
        state = peer.wait_state(gw, lambda s: s.get("table_version") == 1, timeout=30)
        del rig
    return {"heap_free": state["heap_free"], "heap_min_free": state["heap_min_free"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-board", action="store_true", help="skip the whole-board comparison")
    args = ap.parse_args()
    heap_kib = int(profiles.get(PROFILE)["heap"].rstrip("K"))
    image = firmware.image()
    heap = f"{heap_kib + -(-image.stat().st_size // 1024)}K"  # as the rig: the profile's plus the image
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as tmp:
        work = Path(tmp)
        certs = tlscerts.make(work / "certs")
        shim = None
        if shutil.which("gcc"):
            (work / "shim.c").write_text(SHIM)
            subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(work / "shim.so"), str(work / "shim.c"),
                            "-ldl"], check=True)
            shim = work / "shim.so"
        tls_port = free_port()
        with Mosquitto(conf_extra=tlscerts.listener(certs, tls_port)) as broker:
            wait_port("127.0.0.1", tls_port, 5)
            runs = {name: [run_client(work, image, heap, port, ca, shim) for _ in range(RUNS)]
                    for name, port, ca in (("plain", broker.port, "-"), ("tls", tls_port, str(certs / "ca.crt")))}
            # the lowest free heap is polled, so a run can miss the low point: the lowest of RUNS runs
            plain, tls = ({**r[0], "low_free": min(x["low_free"] for x in r)} for r in (runs["plain"], runs["tls"]))
            print(f"profile {PROFILE}: MicroPython heap {heap_kib}K (+ {image.stat().st_size} B ROMFS image, held "
                  f"in the heap by the unix port); one connection, 20,000-byte QoS 1 echo")
            for name, r in (("mqtt://", plain), ("mqtts://", tls)):
                print(f"  {name:9} heap in session {r['session_alloc']:6} B, lowest free {r['low_free']:6} B of "
                      f"{r['start_free']}; C heap live {r['native_live_session']:6} B, peak {r['native_peak']:6} B; "
                      f"connect {r['connect_ms']} ms; after close heap {r['closed_alloc']} B, C heap "
                      f"{r['native_after_close']} B")
            figures = {"py_heap_tls_extra": tls["session_alloc"] - plain["session_alloc"],
                       "py_low_free_tls_extra": plain["low_free"] - tls["low_free"],
                       "c_heap_tls_live": tls["native_live_session"] - plain["native_live_session"],
                       "c_heap_tls_peak": tls["native_peak"] - plain["native_peak"],
                       "tls_connect_ms": tls["connect_ms"], "plain_connect_ms": plain["connect_ms"],
                       "tls_heap_after_close": tls["closed_alloc"], "tls_c_heap_after_close": tls["native_after_close"]}
            if not args.no_board:
                b_plain = board_heap(broker.url, broker.url, None)
                b_tls = board_heap(f"mqtts://127.0.0.1:{tls_port}", broker.url, (certs / "ca.crt").read_text())
                print(f"  whole board online with a table: heap_free {b_plain['heap_free']} (mqtt://) vs "
                      f"{b_tls['heap_free']} (mqtts://), heap_min_free {b_plain['heap_min_free']} vs "
                      f"{b_tls['heap_min_free']} of {heap_kib * 1024}")
                figures |= {"board_heap_free_plain": b_plain["heap_free"], "board_heap_free_tls": b_tls["heap_free"],
                            "board_heap_min_free_plain": b_plain["heap_min_free"],
                            "board_heap_min_free_tls": b_tls["heap_min_free"]}
            if shim is None:
                print("  (no gcc: the C heap figures are not measured)")
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
