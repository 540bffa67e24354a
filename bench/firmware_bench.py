"""Bench: the real firmware on an emulated esp32-2gsm board through a call soak, with a 32 KiB table.

The table is the reference one (gsm1's calls go to mariupol-102) padded to the 32 KiB limit with one-caller
routes on gsm2 (hundreds of small routes: the most route objects a table holds; every call's decision
looks through them). Prints, measured in one run:
- the heap's low-water mark over the soak beside the profile's budget, with and without the heap the
  firmware's code takes: the unix port holds the ROMFS image in its heap (the rig gives it the profile's
  heap plus the image's size; the image is not counted) and the objects that importing the boot modules
  from it makes (function, class and module objects, their dicts, interned names: bench/mpy/code_heap.py
  measures them on the same heap), which on a board with ROMFS are made too, in the heap, but are 32-bit
  there (about half the size),
- the time from the inbound +CLIP to the first ATD, three ways: the firmware's own (time.ticks_us from
  the read that brought the +CLIP to the ATD's write, from the console's per-call line), at the emulated
  modem's UART (time.monotonic_ns right before the +CLIP was written to the pty and when the read that
  brought the ATD returned; the unix port's ticks_us is the same CLOCK_MONOTONIC, so the two host legs
  are named: pty to firmware, firmware to pty), and the network's ground truth (legs' starts in whole ms),
  beside the UART time of that ATD line at 115200 baud (issue 14: p99 at most that); then again over
  `--push-calls` more calls while a thread pushes tables to the board back to back (each a new version:
  received, verified, stored, applied),
- flash block erases and writes per call (issue 14: at most 1 erase), and the projected flash life at
  3,000 calls a day: the profile's LittleFS partition (the rig's image, 256 x 4 KiB = 1 MiB) times an
  endurance of 100,000 erase cycles per 4 KiB sector (the ESP32 modules' SPI NOR flash), as LittleFS
  spreads erases over the blocks it allocates (the few blocks of static files, the table and config,
  are not rotated: the real figure is a little lower),
- and that every call produced exactly one record.
The last line is `key=value` pairs.

    python bench/firmware_bench.py [--calls 1000] [--push-calls 200] [--gap-ms 0] [--table 32k|reference]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller import reference  # noqa: E402
from controller.brokers import Mosquitto  # noqa: E402
from emulator import micropython  # noqa: E402
from emulator.board import EmulatedRig  # noqa: E402
from hil_tests.peer import ControllerPeer  # noqa: E402
from protocols.routing import MAX_BODY  # noqa: E402

GW = "gw-mariupol-1"
KEY = "3c" * 32
BAUD = 115200
ENDURANCE = 100_000  # erase cycles per 4 KiB sector of the SPI NOR flash
CALLS_A_DAY = 3000


def heap_bytes(text: str) -> int:
    return int(text[:-1]) * 1024 if text.endswith("K") else int(text)


PUSH_CALLER = "+38068"
CALL_LINE = re.compile(r"calls: gsm1 from (\S+): .*; clip_atd_us=(-?\d+) clip_read_us=(\d+) atd_write_us=(\d+)")


def bench_table(version: int) -> bytes:
    """The reference table padded to MAX_BODY with one-caller routes on gsm2 (none is a candidate for a call on
    gsm1, and every decision looks through them)."""
    doc = reference.table(GW, version=version)
    doc["issued_at"] = 1780000000 - 86400
    body = json.dumps(doc, separators=(",", ":")).encode()
    i = 0
    while True:
        doc["routes"].append({"id": f"pad{i}", "port": "gsm2", "caller": [f"+3805{i:05d}"],
                              "targets": ["mariupol-reserve"]})
        candidate = json.dumps(doc, separators=(",", ":")).encode()
        if len(candidate) > MAX_BODY:
            return body
        body, i = candidate, i + 1


def small_table(version: int) -> bytes:
    """The reference table alone (1.2 KB): what the push phase sends. 32 KiB tables pushed back to back between
    calls were not applied on esp32-2gsm (one does not fit beside the running one while a call is up)."""
    doc = reference.table(GW, version=version)
    doc["issued_at"] = 1780000000 - 86400
    return json.dumps(doc).encode()


def code_heap(rig: EmulatedRig) -> dict:
    """bench/mpy/code_heap.py on the rig's image and heap: {"image", "image_size", "code", "modules"}."""
    proc = subprocess.run(micropython.command(REPO / "bench/mpy/code_heap.py", str(rig.romfs), heap=rig.heap),
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, MICROPYPATH=".frozen"))
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout + proc.stderr)
    return json.loads(proc.stdout.splitlines()[-1])


def latency_parts(truth: list[dict], console: str) -> dict[str, list[tuple]]:
    """Per inbound call with a first attempt, by caller: (network ms, UART ms, pty->firmware ms, firmware ms,
    firmware->pty ms); the last four None where the console or the modem did not stamp it."""
    own = {m.group(1): tuple(int(x) for x in m.groups()[1:]) for m in CALL_LINE.finditer(console)}
    legs = {t["id"]: t for t in truth}
    out = {}
    for t in truth:
        if t["dir"] != "in" or not t["attempts"]:
            continue
        first = legs[t["attempts"][0]["id"]]
        net = (first["start"] - t["start"]) * 1000
        clip, atd = t.get("clip_ns"), first.get("atd_ns")
        uart = (atd - clip) / 1e6 if clip and atd else None
        fw = own.get(t["caller"])
        if fw is None or not clip or not atd:
            out[t["caller"]] = (net, uart, None, None, None)
            continue
        lat_us, read_us, write_us = fw
        out[t["caller"]] = (net, uart, (read_us * 1000 - clip) / 1e6, lat_us / 1000, (atd - write_us * 1000) / 1e6)
    return out


def column(rows, k):
    return [r[k] for r in rows if r[k] is not None]


def fmt(values: list[float]) -> str:
    p50, p99 = percentiles(values)
    return f"p50 {p50:.3f} p99 {p99:.3f} max {max(values, default=float('nan')):.3f} ms"


def percentiles(values: list[float]) -> tuple[float, float]:
    """(median, p99) in ms; NaN for no values."""
    if not values:
        return float("nan"), float("nan")
    lat = sorted(values)
    return statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def push_phase(rig: EmulatedRig, peer: ControllerPeer, calls: int, gap_ms: float) -> tuple[int, int]:
    """Place `calls` calls while a thread pushes new versions of the table back to back; returns
    (tables applied meanwhile, calls placed). Flash is measured before this phase (a table is a big write)."""
    stop = threading.Event()
    applied = [0]

    def pusher() -> None:
        version = 2
        while not stop.is_set() and version < 10_000:
            peer.push_table(GW, small_table(version), KEY)
            try:
                if peer.wait_ack(GW, version, timeout=60)["status"] == "applied":
                    applied[0] += 1
            except TimeoutError:
                print(f"  table v{version}: no ack in 60 s", flush=True)
            version += 1

    thread = threading.Thread(target=pusher, daemon=True)
    thread.start()
    placed = 0
    try:
        for i in range(calls):
            rig.network.call("gsm1", f"{PUSH_CALLER}{i:07d}").wait(30)
            placed += 1
            time.sleep(gap_ms / 1000)
    finally:
        stop.set()
        thread.join(90)
    return applied[0], placed


def wait_records(peer: ControllerPeer, n: int) -> None:
    """Wait for n call records; fewer (a record the board could not store) are reported, not fatal."""
    try:
        peer.wait_calls(GW, n, timeout=120)
    except TimeoutError:
        print(f"  only {len(peer.calls(GW))} of {n} call records arrived", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--push-calls", type=int, default=200, help="calls placed while tables are pushed")
    ap.add_argument("--gap-ms", type=float, default=0,
                    help="wait between one call's end and the next (0: at once, so a call also meets the last one's "
                         "bookkeeping: record to flash, events, collection)")
    ap.add_argument("--deadline-s", type=float, default=3000, help="stop placing calls after this long")
    ap.add_argument("--table", choices=("32k", "reference"), default="32k",
                    help="32k: the reference table padded to 32 KiB (issue 14); reference: it alone (1.2 KB)")
    args = ap.parse_args()

    body = bench_table(1) if args.table == "32k" else small_table(1)
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="bench-controller") as peer:
        rig = EmulatedRig(GW, KEY, broker.url, profile="esp32-2gsm")
        try:
            rig.network.set_time(1780000000)  # a Thursday, 23:26 in Kyiv: the police line is always open
            for centre in reference.CENTRES.values():
                rig.network.destination(centre["number"], answer_after_s=0.05, talk_s=0.05)
            rig.power_on()
            peer.wait_state(GW, lambda s: s.get("online") and all(p["ready"] for p in s["ports"].values()), 60)
            peer.push_table(GW, body, KEY)
            assert peer.wait_ack(GW, 1)["status"] == "applied"
            flash0 = rig.flash_stats()
            t0 = time.monotonic()
            placed = 0
            for i in range(args.calls):
                if time.monotonic() - t0 > args.deadline_s:
                    break
                caller = f"+38067{i:07d}"
                rig.network.call("gsm1", caller).wait(30)
                placed += 1
                time.sleep(args.gap_ms / 1000)
                if (i + 1) % 100 == 0:
                    print(f"  {i + 1} calls, {time.monotonic() - t0:.0f} s", flush=True)
            soak_s = time.monotonic() - t0
            wait_records(peer, placed)
            flash1 = rig.flash_stats()
            soak_placed = placed
            soak_state = peer.command(GW, "resend_state") and peer.wait_state(
                GW, lambda s: s.get("calls", 0) >= placed, timeout=30)
            pushes, push_placed = push_phase(rig, peer, args.push_calls, args.gap_ms)
            placed += push_placed
            wait_records(peer, placed)
            state = peer.command(GW, "resend_state") and peer.wait_state(
                GW, lambda s: s.get("calls", 0) >= placed, timeout=30)
            truth = rig.network.truth()
            console = rig.console()
            code = code_heap(rig)
        finally:
            if os.environ.get("BENCH_CONSOLE"):  # the board's console, to read what a figure does not say
                Path(os.environ["BENCH_CONSOLE"]).write_text(rig.console())
            rig.close()

    parts = latency_parts(truth, console)
    soak = [r for c, r in parts.items() if not c.startswith(PUSH_CALLER)]
    pushed = [r for c, r in parts.items() if c.startswith(PUSH_CALLER)]
    records = peer.calls(GW)
    exact = len(records) == placed and len({r["caller"] for r in records}) == placed
    budget = heap_bytes(rig.spec["heap"])  # the profile's; the rig's heapsize adds the image's size to it
    total = heap_bytes(rig.heap)
    low, low_push = soak_state["heap_min_free"], state["heap_min_free"]
    peak = total - low - code["image"]  # what the board's data and code objects took at most, image not counted
    peak_push = total - low_push - code["image"]
    atd = f"ATD{reference.CENTRES['mariupol-102']['number']};\r"
    uart_ms = len(atd) * 10 / BAUD * 1000
    net50, net99 = percentiles(column(soak, 0))
    fw50, fw99 = percentiles(column(soak, 3))
    pty50, pty99 = percentiles(column(soak, 1))
    push50, push99 = percentiles(column(pushed, 0))
    _, pfw99 = percentiles(column(pushed, 3))
    erases = (flash1["erases"] - flash0["erases"]) / soak_placed
    writes = (flash1["writes"] - flash0["writes"]) / soak_placed
    life_years = rig.flash_blocks * ENDURANCE / max(erases * CALLS_A_DAY, 1e-9) / 365
    lost = console.count("not stored: MemoryError")
    flush_errors = console.count("store: flush failed")
    print(f"calls: {placed} in {soak_s:.0f} s, records {len(records)} (exactly one per call: {exact}; the store "
          f"raised MemoryError for {lost} of them: a record already in its slot goes up with a later batch); "
          f"batch writes failed {flush_errors} times (those records stay staged for the next one); "
          f"table {len(body)} B")
    print(f"heap: profile budget {budget} B; -X heapsize={rig.heap} ({total} B) = the budget + the ROMFS image "
          f"({code['image_size']} B, {code['image']} B of heap, not counted below)")
    print(f"  code objects of the boot modules from the image: {code['code']} B ({len(code['modules'])} modules, "
          f"bench/mpy/code_heap.py)")
    print(f"  soak: low-water free {low} B, peak used {peak} B ({peak / budget:.0%} of the budget); without the "
          f"code objects {peak - code['code']} B ({(peak - code['code']) / budget:.0%})")
    print(f"  with the table pushes: low-water free {low_push} B, peak used {peak_push} B ({peak_push / budget:.0%});"
          f" without the code objects {peak_push - code['code']} B ({(peak_push - code['code']) / budget:.0%})")
    print(f"latency +CLIP -> first ATD ({len(soak)} calls), UART time of the ATD line at {BAUD} baud "
          f"{uart_ms:.2f} ms:")
    print(f"  firmware's own (ticks_us, +CLIP read -> ATD written): {fmt(column(soak, 3))}")
    print(f"  at the modem's UART (pty write -> pty read, monotonic_ns): {fmt(column(soak, 1))}")
    print(f"    of which host, pty -> firmware's read: {fmt(column(soak, 2))}")
    print(f"    of which host, firmware's write -> pty read: {fmt(column(soak, 4))}")
    print(f"  network ground truth (legs' starts, whole ms): {fmt(column(soak, 0))}")
    print(f"latency while tables are pushed ({len(pushed)} calls, {pushes} tables applied meanwhile): firmware's own "
          f"{fmt(column(pushed, 3))}; UART {fmt(column(pushed, 1))}; network {fmt(column(pushed, 0))}")
    print(f"flash per call: {erases:.2f} erases, {writes:.1f} writes (target <= 1 erase); at {CALLS_A_DAY} calls a "
          f"day the {rig.flash_blocks} x 4 KiB partition of {ENDURANCE} cycles lasts {life_years:.0f} years")
    print(f"calls={placed} records_exact={int(exact)} store_memory_errors={lost} store_flush_errors={flush_errors} "
          f"table_bytes={len(body)} "
          f"heap_budget={budget} "
          f"heap_image={code['image']} heap_code={code['code']} heap_low_free={low} heap_peak_used={peak} "
          f"heap_peak_pct={100 * peak / budget:.0f} heap_peak_no_code={peak - code['code']} "
          f"heap_peak_no_code_pct={100 * (peak - code['code']) / budget:.0f} "
          f"heap_push_peak_pct={100 * peak_push / budget:.0f} "
          f"fw_p50_ms={fw50:.3f} fw_p99_ms={fw99:.3f} uart_p50_ms={pty50:.3f} uart_p99_ms={pty99:.3f} "
          f"latency_p50_ms={net50:.2f} latency_p99_ms={net99:.2f} push_fw_p99_ms={pfw99:.3f} "
          f"latency_push_p50_ms={push50:.2f} latency_push_p99_ms={push99:.2f} tables_pushed={pushes} "
          f"gap_ms={args.gap_ms:g} "
          f"atd_uart_ms={uart_ms:.2f} erases_per_call={erases:.2f} writes_per_call={writes:.1f} "
          f"flash_life_years={life_years:.0f}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
