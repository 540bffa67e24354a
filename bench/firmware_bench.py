"""Bench: the real firmware on an emulated esp32-2gsm board through a call soak.

Prints, measured in one run:
- the heap's low-water mark during the soak beside the profile's budget (-X heapsize),
- the added latency from the inbound RING/+CLIP to the first ATD the board writes (median, p99), from the
  network's ground truth (the emulator's clock: pty and host scheduling included), beside the UART time of
  that ATD line at 115200 baud (issue 14: p99 at most that); then again over `--push-calls` more calls while
  a thread pushes tables to the board back to back (each a new version: received, verified, stored, applied),
- flash block erases and writes per call (issue 14: at most 1 erase), and the projected flash life at
  3,000 calls a day: the profile's LittleFS partition (the rig's image, 256 x 4 KiB = 1 MiB) times an
  endurance of 100,000 erase cycles per 4 KiB sector (the ESP32 modules' SPI NOR flash), as LittleFS
  spreads erases over the blocks it allocates (the few blocks of static files, the table and config,
  are not rotated: the real figure is a little lower),
- and that every call produced exactly one record.
The last line is `key=value` pairs.

    python bench/firmware_bench.py [--calls 1000] [--push-calls 200] [--gap-ms 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller import reference  # noqa: E402
from controller.brokers import Mosquitto  # noqa: E402
from emulator.board import EmulatedRig  # noqa: E402
from hil_tests.peer import ControllerPeer  # noqa: E402

GW = "gw-mariupol-1"
KEY = "3c" * 32
BAUD = 115200
ENDURANCE = 100_000  # erase cycles per 4 KiB sector of the SPI NOR flash
CALLS_A_DAY = 3000


def heap_bytes(text: str) -> int:
    return int(text[:-1]) * 1024 if text.endswith("K") else int(text)


PUSH_CALLER = "+38068"


def percentiles(values: list[float]) -> tuple[float, float]:
    """(median, p99) in ms; NaN for no values."""
    if not values:
        return float("nan"), float("nan")
    lat = sorted(values)
    return statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def push_phase(rig: EmulatedRig, peer: ControllerPeer, doc: dict, calls: int, gap_ms: float) -> tuple[int, int]:
    """Place `calls` calls while a thread pushes new versions of the table back to back; returns
    (tables applied meanwhile, calls placed). Flash is measured before this phase (a table is a big write)."""
    stop = threading.Event()
    applied = [0]

    def pusher() -> None:
        version = 2
        while not stop.is_set() and version < 10_000:
            peer.push_table(GW, dict(doc, version=version), KEY)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--push-calls", type=int, default=200, help="calls placed while tables are pushed")
    ap.add_argument("--gap-ms", type=float, default=0,
                    help="wait between one call's end and the next (0: at once, so a call also meets the last one's "
                         "bookkeeping: record to flash, events, collection)")
    ap.add_argument("--deadline-s", type=float, default=3000, help="stop placing calls after this long")
    args = ap.parse_args()

    doc = reference.table(GW, version=1)
    doc["issued_at"] = 1780000000 - 86400
    body = json.dumps(doc).encode()
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
            latencies = []
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
            peer.wait_calls(GW, placed, timeout=120)
            flash1 = rig.flash_stats()
            soak_placed = placed
            pushes, push_placed = push_phase(rig, peer, doc, args.push_calls, args.gap_ms)
            placed += push_placed
            peer.wait_calls(GW, placed, timeout=120)
            state = peer.command(GW, "resend_state") and peer.wait_state(
                GW, lambda s: s.get("calls", 0) >= placed, timeout=30)
            truth = rig.network.truth()
        finally:
            rig.close()

    legs = {t["id"]: t for t in truth}
    pushed = []
    for t in truth:
        if t["dir"] == "in" and t["attempts"]:
            first = legs[t["attempts"][0]["id"]]
            (pushed if t["caller"].startswith(PUSH_CALLER) else latencies).append((first["start"] - t["start"]) * 1000)
    records = peer.calls(GW)
    exact = len(records) == placed and len({r["caller"] for r in records}) == placed
    budget = heap_bytes(rig.heap)
    low = state["heap_min_free"]
    atd = f"ATD{reference.CENTRES['mariupol-102']['number']};\r"
    uart_ms = len(atd) * 10 / BAUD * 1000
    p50, p99 = percentiles(latencies)
    push50, push99 = percentiles(pushed)
    erases = (flash1["erases"] - flash0["erases"]) / soak_placed
    writes = (flash1["writes"] - flash0["writes"]) / soak_placed
    life_years = rig.flash_blocks * ENDURANCE / max(erases * CALLS_A_DAY, 1e-9) / 365
    print(f"calls: {placed} in {soak_s:.0f} s, records {len(records)} (exactly one per call: {exact})")
    print(f"heap: budget {budget} B (-X heapsize={rig.heap}), low-water free {low} B, "
          f"peak used {budget - low} B ({(budget - low) / budget:.0%})")
    print(f"latency RING/+CLIP -> first ATD: median {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"UART time of the ATD line at {BAUD} baud {uart_ms:.2f} ms (ratio median/uart {p50 / uart_ms:.1f}, "
          f"p99/uart {p99 / uart_ms:.1f})")
    print(f"latency while tables are pushed ({len(pushed)} calls, {pushes} tables applied meanwhile): "
          f"median {push50:.1f} ms, p99 {push99:.1f} ms")
    print(f"flash per call: {erases:.2f} erases, {writes:.1f} writes (target <= 1 erase); at {CALLS_A_DAY} calls a "
          f"day the {rig.flash_blocks} x 4 KiB partition of {ENDURANCE} cycles lasts {life_years:.0f} years")
    print(f"calls={placed} records_exact={int(exact)} heap_budget={budget} heap_low_free={low} "
          f"heap_peak_used={budget - low} latency_p50_ms={p50:.2f} latency_p99_ms={p99:.2f} "
          f"latency_push_p50_ms={push50:.2f} latency_push_p99_ms={push99:.2f} tables_pushed={pushes} gap_ms={args.gap_ms:g} "
          f"atd_uart_ms={uart_ms:.2f} erases_per_call={erases:.2f} writes_per_call={writes:.1f} "
          f"flash_life_years={life_years:.0f}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
