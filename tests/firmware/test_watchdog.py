"""The board's hardware watchdog, emulated (EmulatedRig(watchdog_ms=...)): a running firmware feeds it and
is left alone; a firmware that hangs stops feeding it, the rig resets the board, the board comes back
online, and its boot reports a "watchdog_reset" alarm to the controller as alarms go."""

from __future__ import annotations

import os

import pytest

from tests.conditions import until

pytestmark = [pytest.mark.micropython, pytest.mark.slow]

WATCHDOG_MS = 10000  # long enough for a boot on a loaded machine (the board feeds it once a second)


def ready(s: dict) -> bool:
    return bool(s.get("online")) and all(p["ready"] for p in s["ports"].values())


def test_a_hung_firmware_is_reset_by_the_watchdog_and_says_so():
    from controller.brokers import Mosquitto
    from emulator.board import EmulatedRig
    from hil_tests.peer import ControllerPeer
    from tests.hil.conftest import KEY, MONDAY_NOON

    gw = "gw-wdt-1"
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="wdt-controller") as peer:
        rig = EmulatedRig(gw, KEY, broker.url, profile="esp32-2gsm", watchdog_ms=WATCHDOG_MS)
        try:
            rig.network.set_time(MONDAY_NOON)
            rig.power_on()
            boot = peer.wait_state(gw, ready, timeout=60)["boot"]
            feed = rig.workdir / "wdt.feed"
            first = feed.stat().st_mtime_ns
            until(lambda: feed.stat().st_mtime_ns != first, 10, "the firmware to feed the watchdog again")
            assert rig.watchdog.resets == 0 and rig.boots == 1

            mark = rig.console_mark()
            rig.hang()
            rig.wait_console(r"WATCHDOG RESET", timeout=WATCHDOG_MS / 1000 + 30, after=mark)
            state = peer.wait_state(gw, lambda s: ready(s) and s.get("boot", 0) > boot, timeout=60)
            assert rig.watchdog.resets == 1 and rig.boots == 2 and rig.died is None
            rig.wait_console(r"boot: after a watchdog reset", timeout=5, after=mark)

            def alarms():
                return [r for (g, _, _), r in peer.records.items() if g == gw and r.get("t") == "alarm"]

            peer.wait(lambda: any(r["code"] == "watchdog_reset" for r in alarms()), 30, "the watchdog_reset alarm")
            assert [r["code"] for r in alarms()] == ["watchdog_reset"]
            assert not (rig.workdir / "wdt.cause").exists(), "the cause is reported once"

            # an ordinary power cycle is no watchdog reset
            rig.power_cycle()
            peer.wait_state(gw, lambda s: ready(s) and s.get("boot", 0) > state["boot"], timeout=60)
            assert [r["code"] for r in alarms()] == ["watchdog_reset"] and rig.watchdog.resets == 1
            boot = peer.wait_state(gw, ready)["boot"]

            # a firmware interrupted to its REPL (Ctrl-C on the serial console) feeds it no more either
            mark = rig.console_mark()
            fd = os.open(rig.console_path, os.O_RDWR | os.O_NOCTTY)
            try:
                os.write(fd, b"\x03")
                rig.wait_console(r"KeyboardInterrupt", timeout=20, after=mark)
                rig.wait_console(r"WATCHDOG RESET", timeout=WATCHDOG_MS / 1000 + 30, after=mark)
            finally:
                os.close(fd)
            peer.wait_state(gw, lambda s: ready(s) and s.get("boot", 0) > boot, timeout=60)
            peer.wait(lambda: len(alarms()) == 2, 30, "a second watchdog_reset alarm")
            assert [r["code"] for r in alarms()] == ["watchdog_reset"] * 2 and rig.watchdog.resets == 2
        except BaseException:
            print(rig.console()[-6000:])
            raise
        finally:
            rig.close()
