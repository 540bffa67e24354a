"""bench-in-a-box: a BenchRig whose parts are the emulator's, reached only through real interfaces.

The emulated board (emulator.board.EmulatedRig with its Modbus relay and console pty), its ports given the SIM
numbers of [board.numbers], and caller and centre modems that are the emulator's subscriber lines on ptys
(emulator.subscribers). The BenchRig then reaches them exactly as a real bench's: the console through
pyserial, power through a pymodbus client writing the relay's coil 0, calls through AT commands. A private
Mosquitto is the broker (so `broker_control` can stop and start it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from controller.brokers import Mosquitto
from emulator import board as emulated_board
from hil_tests.rig import base
from hil_tests.rig.bench import BenchRig
from hil_tests.rig.config import PowerConfig, RigConfig, SerialConfig
from hil_tests.rig.emulated_rig import _PrivateBroker


class BoxRig(base.Rig):
    def __init__(self, cfg: RigConfig, log_dir: str | Path):
        self.cfg, self.name, self.features = cfg, cfg.name, cfg.features
        self.log_dir = Path(log_dir)
        self.bench = BenchRig(cfg, log_dir)  # its board info now; its parts once the box is built
        self.board = self.bench.board
        self._mosquitto: Mosquitto | None = None
        self.emulated: emulated_board.EmulatedRig | None = None

    def open(self) -> BoxRig:
        try:
            self._mosquitto = Mosquitto().start()
            b = self.cfg.board
            self.emulated = board = emulated_board.EmulatedRig(
                b.id, b.key, self._mosquitto.url, profile=b.profile, relay=True,
                user=self.cfg.broker_user, password=self.cfg.broker_password)
            net = board.network
            for port, number in b.numbers.items():
                net.set_number(port, number)
            callers = tuple(replace(m, url=net.add_subscriber(m.name, m.number)) for m in self.cfg.callers)
            centres = tuple(replace(m, url=net.add_subscriber(m.name, m.number)) for m in self.cfg.centres)
            parts = replace(self.cfg, kind="bench", broker=self._mosquitto.url, callers=callers, centres=centres,
                            console=SerialConfig(board.console_path, 115200),
                            power=PowerConfig("modbus-tcp", host="127.0.0.1", port=board.relay.port, coil=0,
                                              off_s=0.2))
            self.bench = BenchRig(parts, self.log_dir).open()
        except BaseException:
            self.close()
            raise
        self.power, self.console, self.network, self.flash = (self.bench.power, self.bench.console,
                                                              self.bench.network, self.bench.flash)
        self.broker = _PrivateBroker(self._mosquitto, self.name)
        return self

    def close(self) -> None:
        self.bench.close()
        if self.emulated is not None:
            self.emulated.close()
            self.emulated = None
        if self._mosquitto is not None:
            self._mosquitto.close()
            self._mosquitto = None
