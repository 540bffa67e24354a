"""Bench: the real firmware on an emulated esp32-2gsm board through a call soak.

Prints, measured in one run:
- the heap's low-water mark during the soak beside the profile's budget (-X heapsize),
- the added latency from the inbound RING/+CLIP to the first ATD the board writes (median, p99),
  beside the UART time of that ATD line at 115200 baud,
- flash block erases and writes per call (target <= 2 erases: ten years of 3000 calls a day on a
  1 MiB partition of 100k-cycle blocks),
- and that every call produced exactly one record.
The last line is `key=value` pairs.

    python bench/firmware_bench.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller import reference  # noqa: E402
from controller.brokers import Mosquitto  # noqa: E402
from hil_tests.peer import ControllerPeer  # noqa: E402
from hil_tests.rig.emulated import EmulatedRig  # noqa: E402

GW = "gw-mariupol-1"
KEY = "3c" * 32
BAUD = 115200


def heap_bytes(text: str) -> int:
    return int(text[:-1]) * 1024 if text.endswith("K") else int(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
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
                if (i + 1) % 100 == 0:
                    print(f"  {i + 1} calls, {time.monotonic() - t0:.0f} s", flush=True)
            soak_s = time.monotonic() - t0
            peer.wait_calls(GW, placed, timeout=120)
            flash1 = rig.flash_stats()
            state = peer.command(GW, "resend_state") and peer.wait_state(
                GW, lambda s: s.get("calls", 0) >= placed, timeout=30)
            truth = rig.network.truth()
        finally:
            rig.close()

    legs = {t["id"]: t for t in truth}
    for t in truth:
        if t["dir"] == "in" and t["attempts"]:
            first = legs[t["attempts"][0]["id"]]
            latencies.append((first["start"] - t["start"]) * 1000)
    records = peer.calls(GW)
    exact = len(records) == placed and len({r["caller"] for r in records}) == placed
    budget = heap_bytes(rig.heap)
    low = state["heap_min_free"]
    atd = f"ATD{reference.CENTRES['mariupol-102']['number']};\r"
    uart_ms = len(atd) * 10 / BAUD * 1000
    lat = sorted(latencies)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    erases = (flash1["erases"] - flash0["erases"]) / placed
    writes = (flash1["writes"] - flash0["writes"]) / placed
    print(f"calls: {placed} in {soak_s:.0f} s, records {len(records)} (exactly one per call: {exact})")
    print(f"heap: budget {budget} B (-X heapsize={rig.heap}), low-water free {low} B, "
          f"peak used {budget - low} B ({(budget - low) / budget:.0%})")
    print(f"latency RING/+CLIP -> first ATD: median {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"UART time of the ATD line at {BAUD} baud {uart_ms:.2f} ms (ratio median/uart {p50 / uart_ms:.1f})")
    print(f"flash per call: {erases:.2f} erases, {writes:.1f} writes (target <= 2 erases)")
    print(f"calls={placed} records_exact={int(exact)} heap_budget={budget} heap_low_free={low} "
          f"heap_peak_used={budget - low} latency_p50_ms={p50:.1f} latency_p99_ms={p99:.1f} "
          f"atd_uart_ms={uart_ms:.2f} erases_per_call={erases:.2f} writes_per_call={writes:.1f}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
