"""The bench's console and power drivers on the emulated board, reached only as a real board is: its console
pty through pyserial and its power through the Modbus relay with a pymodbus client (BenchRig's own drivers)."""

from __future__ import annotations

import pytest

from controller.brokers import Mosquitto
from emulator.board import EmulatedRig
from hil_tests.peer import ControllerPeer
from hil_tests.rig.config import PowerConfig
from hil_tests.rig.drivers.modbus_power import ModbusPower
from hil_tests.rig.drivers.serial_console import SerialConsole

pytestmark = [pytest.mark.slow, pytest.mark.micropython]
GW = "gw-bench-drivers-1"


def test_relay_power_and_serial_console_drive_the_emulated_board(tmp_path):
    with Mosquitto() as mq, ControllerPeer(mq.url, client_id="bench-drivers") as peer, \
            EmulatedRig(GW, "5a" * 32, mq.url, profile="esp32-wrover-4gsm", relay=True) as board:
        console = SerialConsole(board.console_path, 115200, tmp_path / "console.log").open()
        power = ModbusPower(PowerConfig("modbus-tcp", host="127.0.0.1", port=board.relay.port, coil=0,
                                        off_s=0.5)).open()
        try:
            power.cycle()  # the relay's state at the start is unknown on a bench: off, then on
            console.expect(r"link: connected", timeout=60)
            first = peer.wait_state(GW, lambda s: s.get("online"), timeout=60)
            mark = console.mark()
            power.cut()
            peer.wait_state(GW, lambda s: s.get("online") is False, timeout=60)  # its last will: it is gone
            assert not board.running and power.powered() is False
            power.on()
            console.expect(r"link: connected", timeout=60, after=mark)
            again = peer.wait_state(GW, lambda s: s.get("online") and s["boot"] > first["boot"], timeout=60)
        finally:
            power.close()
            console.close()
    assert again["boot"] == first["boot"] + 1
    log = (tmp_path / "console.log").read_text()
    assert log.count("link: connected") == 2, log[-2000:]
