"""The board's clock (firmware/gw/clock.py) on the real MicroPython, ticks scripted."""

import json

from emulator import micropython


def readings():
    proc = micropython.run("tests/firmware/mpy/clock_scenarios.py", extra_path=[micropython.REPO / "firmware"],
                           timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_clock_behind_the_floor_runs_from_it_and_never_freezes():
    r = readings()
    lag = r["lagging"]
    assert lag[0] == 1700000000, "never before the floor"
    assert lag == [1700000000, 1700000061, 1700000122, 1700000183], "floor + elapsed time, monotonic"
    a, b, ahead, synced = r["floor_then_network"]
    assert (a, b) == (1700000000, 1700000010), "before any network time: the floor plus elapsed time"
    assert ahead == 1700000500 and synced, "a network time ahead of the floor wins"
    assert r["low_floor"] == [1700000002]
