"""The board's power through a Modbus relay module (TCP, or RTU on RS-485), written with a pymodbus client."""

from __future__ import annotations

import threading
import time

from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from hil_tests.rig import base
from hil_tests.rig.config import PowerConfig


class RelayError(RuntimeError):
    pass


class ModbusPower(base.Power):
    """`on()` closes the board's relay (opens it when `invert`); a later `on()` waits out `off_s` since the last
    off, so a cycle always leaves the board unpowered long enough for its capacitors to drain."""

    def __init__(self, cfg: PowerConfig, timeout: float = 3.0):
        self.cfg = cfg
        if cfg.kind == "modbus-tcp":
            self.client = ModbusTcpClient(cfg.host, port=cfg.port, timeout=timeout, retries=1)
            self.where = f"modbus-tcp://{cfg.host}:{cfg.port} unit {cfg.unit} coil {cfg.coil}"
        else:
            self.client = ModbusSerialClient(cfg.serial, baudrate=cfg.baudrate, timeout=timeout, retries=1)
            self.where = f"modbus-rtu {cfg.serial}@{cfg.baudrate} unit {cfg.unit} coil {cfg.coil}"
        self._lock = threading.Lock()
        self._off_since: float | None = None

    def open(self) -> ModbusPower:
        if not self.client.connect():
            raise RelayError(f"power relay: cannot connect to {self.where}")
        return self

    def close(self) -> None:
        self.client.close()

    def _write(self, powered: bool) -> None:
        coil = powered != self.cfg.invert
        with self._lock:
            reply = self.client.write_coil(self.cfg.coil, coil, device_id=self.cfg.unit)
        if reply.isError():
            raise RelayError(f"power relay {self.where}: writing {coil} failed: {reply}")

    def powered(self) -> bool:
        """What the relay reports now (read back, not remembered)."""
        with self._lock:
            reply = self.client.read_coils(self.cfg.coil, count=1, device_id=self.cfg.unit)
        if reply.isError():
            raise RelayError(f"power relay {self.where}: reading failed: {reply}")
        return bool(reply.bits[0]) != self.cfg.invert

    def on(self) -> None:
        if self._off_since is not None:
            left = self.cfg.off_s - (time.monotonic() - self._off_since)
            if left > 0:
                time.sleep(left)  # the bench's off time, a property of the hardware
        self._write(True)
        self._off_since = None

    def off(self) -> None:
        self._write(False)
        if self._off_since is None:
            self._off_since = time.monotonic()

    def cut(self) -> None:
        self.off()  # the relay is the board's only supply: opening it is a sudden loss of power
