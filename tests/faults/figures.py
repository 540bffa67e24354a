"""Controller totals against the emulated network's ground truth, as one line of figures per scenario.

calls made: inbound calls the network placed into the board; expected: those the board lived to the end
(a call whose modems lost power with the board, result `modem_reset`, cannot be recorded by anyone and is
shown as `cut`); stored: call records in the database; duplicated: records stored more than once (by key,
and by caller: every call in a scenario has a caller of its own); lost: expected calls neither stored nor
counted by a `dropped` record; counted: the calls the stored `dropped` records say were dropped; hourly:
the calls the controller's hourly aggregates (call_hours, what reports read) count, which must equal stored.
The figures go to build/faults/figures.json (one entry per scenario and setup), which bench/fault_figures.py
turns into a table.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from controller.models import CallHour, Record
from tests.conditions import until

OUT = Path(__file__).resolve().parents[2] / "build" / "faults" / "figures.json"
CUT = ("modem_reset", "shutdown")


def dropped_count(datas: list[dict]) -> int:
    """Calls the stored `dropped` records account for: a drop record that a later one superseded (its interval
    inside the later one's) is counted in the later one's `count` already."""
    spans = [(int(d.get("first_seq") or 0), int(d.get("last_seq") or 0), int(d.get("count") or 0), seq)
             for seq, d in datas]
    total = 0
    for _, _, count, seq in spans:
        if not any(f <= seq <= lst and s != seq for f, lst, _, s in spans):
            total += count
    return total


def tally(db, rig, gw: str) -> dict:
    truth = rig.network.inbound()
    with db.session() as s:
        calls = s.execute(select(Record.caller, Record.store_id, Record.seq)
                          .where(Record.gateway_id == gw, Record.kind == "call")).all()
        drops = s.execute(select(Record.seq, Record.data)
                          .where(Record.gateway_id == gw, Record.kind == "dropped")).all()
        rows = s.scalar(select(func.count()).select_from(Record).where(Record.gateway_id == gw))
        hourly = s.scalar(select(func.coalesce(func.sum(CallHour.offered), 0)).where(CallHour.gateway_id == gw))
        keys = s.scalar(select(func.count()).select_from(
            select(Record.store_id, Record.seq).where(Record.gateway_id == gw).distinct().subquery()))
    cut = [t for t in truth if t["result"] in CUT]
    lived = [t for t in truth if t["result"] not in CUT]
    made = {t["caller"] for t in truth}
    stored = Counter(c.caller for c in calls)
    counted = dropped_count([(seq, data if isinstance(data, dict) else json.loads(data)) for seq, data in drops])
    stored_lived = sum(1 for t in lived if stored[t["caller"]])
    return {"calls_made": len(truth), "expected": len(lived), "cut": len(cut), "stored": len(calls),
            "duplicated": (rows - keys) + sum(n - 1 for n in stored.values() if n > 1),
            "unknown": sum(1 for c in stored if c not in made),  # a record of no call the network placed
            "counted": counted, "lost": len(lived) - stored_lived - counted, "dropped_records": len(drops),
            "hourly": int(hourly)}


def wait_settled(db, rig, gw: str, exact: bool = True, timeout: float = 120) -> dict:
    """Figures once every call the board lived is stored (or counted as dropped) and nothing moves."""
    last = {}

    def settled():
        nonlocal last
        f = tally(db, rig, gw)
        done = f["lost"] <= 0 and (not exact or f["counted"] or f["stored"] >= f["expected"])
        still = f == last
        last = f
        return done and still and f
    try:
        return until(settled, timeout, f"{gw}'s records to settle", every=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}; the figures then: {last}") from None


def report(scenario: str, setup: str, figures: dict, seconds: float, note: str = "") -> None:
    """One line on stdout, and the entry in build/faults/figures.json (merged with other runs')."""
    line = dict(scenario=scenario, setup=setup, **figures, seconds=round(seconds, 1))
    if note:
        line["note"] = note
    print("FIGURES " + " ".join(f"{k}={v}" for k, v in line.items()))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lock = OUT.with_suffix(".lock")
    deadline = time.monotonic() + 10
    while True:  # xdist workers or two runs: one writer at a time
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                lock.unlink(missing_ok=True)
            time.sleep(0.05)
    try:
        try:
            data = json.loads(OUT.read_text())
        except (OSError, ValueError):
            data = {}
        data[f"{scenario}/{setup}"] = line
        OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)


def assert_exact(figures: dict) -> None:
    """Controller totals = ground truth: every call the board lived stored once, or counted as dropped."""
    assert figures["duplicated"] == 0, figures
    assert figures["unknown"] == 0, figures
    assert figures["lost"] == 0, figures
    assert figures["stored"] + figures["counted"] - 0 >= figures["expected"], figures
    assert figures["stored"] <= figures["calls_made"], figures
    assert figures["hourly"] == figures["stored"], f"the hourly aggregates count every stored call once: {figures}"
