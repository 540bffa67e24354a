"""`citygate check`: the running gateway's own self-test (`Gateway.selftest()`, the MQTT `selftest` command's),
read over the serial console.

How it reaches the running gateway: as on a real ESP32, whose REPL is reachable only once main.py stops,
check interrupts the firmware (Ctrl-C, then the raw REPL without a soft reset, so its objects stay in
memory), calls `selftest()` on the Gateway that `gw.app.current` holds (a coroutine that awaits nothing,
stepped once), and soft-resets the board so the firmware starts again, waiting for its boot banner. The
answer is the gateway's state at the moment it was interrupted: right after a power-on or a flash give
`--wait`, and a failing test is taken again once the restarted firmware has connected to the broker and
set its clock from the network.
An ESP32's watchdog keeps running while the firmware is stopped: check feeds it (board_serial.Board.probe).
"""

from __future__ import annotations

import time

from controller.board_serial import Board

SELFTEST = r"""
import json
try:
    from gw import app as _a
    _g = _a.current
except ImportError:
    _g = None
if _g is None:
    print(json.dumps(None))
else:
    _c = _g.selftest()
    try:
        _c.send(None)
        print(json.dumps({"ok": False, "problems": ["selftest: waited for something"], "checks": []}))
    except StopIteration as _e:
        print(json.dumps(_e.value))
"""
READY = (b"link: connected", b"clock: synced")  # what a booting firmware prints once it is up


def check(board: Board, wait: float = 0) -> dict:
    """{"ok", "checks": [[name, ok, detail]], "board", "selftest", "banner"}; the firmware runs again after.

    `wait`: when a check fails, restart the firmware, watch its console until it has connected to the broker
    and set its clock (lines printed after the boot banner, so none is missed), and test again, until `wait`
    seconds have passed."""
    deadline = time.monotonic() + wait
    t0 = time.monotonic()
    while True:
        board.enter(soft_reset=False)
        info = board.probe()
        result = board.json(SELFTEST)
        rows = [["micropython", True, f"{info['version']} ({info['platform']})"]]
        if not isinstance(result, dict):
            fw = info.get("fw") or {}
            rows.append(["firmware", False, "not running: " + (
                f"build {fw['build_id']} is installed but stopped (see `citygate console`)" if fw.get("build_id")
                else "no citygate firmware on this board (`citygate flash`)")])
            return {"ok": False, "checks": rows, "board": info, "selftest": None, "banner": None}
        rows += [list(r) for r in result.get("checks", [])]
        banner = board.restart()
        ok = all(r[1] for r in rows)
        if ok or time.monotonic() >= deadline:
            break
        board.watch(READY, deadline - time.monotonic())
    return {"ok": ok, "checks": rows, "board": info, "selftest": result, "banner": banner,
            "seconds": round(time.monotonic() - t0, 1)}
