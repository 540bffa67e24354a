"""A Modbus TCP power relay, as a bench has one: a pymodbus server whose coils switch things on and off.

A real bench powers its board through a relay module driven over Modbus (TCP, or RTU on RS-485); the
emulated board is powered the same way, so the code that drives a real relay (a pymodbus client
writing a coil) is what powers the emulated board too. Each coil write calls `on_switch(coil, on)`;
coil 0 is the board's power unless the rig says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from controller.brokers import free_port

log = logging.getLogger("citygate.relay")
WRITE_COIL, WRITE_COILS = 5, 15


class ModbusRelay:
    """`with ModbusRelay(on_switch=...) as relay:` a relay module with `coils` coils on 127.0.0.1:`port`."""

    def __init__(self, on_switch: Callable[[int, bool], None], coils: int = 8, unit: int = 1,
                 port: int | None = None, initial: bool = False):
        self.on_switch = on_switch
        self.unit, self.coils = unit, coils
        self.host, self.port = "127.0.0.1", port or free_port()
        self.state = [initial] * coils
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"modbus-tcp://{self.host}:{self.port}"

    async def _action(self, function_code, start_address, address, count, current_registers, set_values):
        """pymodbus calls this around every access; a write brings the values it sets."""
        if function_code not in (WRITE_COIL, WRITE_COILS) or set_values is None:
            return None
        for i, value in enumerate(set_values):
            coil = address + i
            if 0 <= coil < self.coils and bool(value) != self.state[coil]:
                self.state[coil] = bool(value)
                try:
                    await asyncio.to_thread(self.on_switch, coil, bool(value))
                except Exception:  # the relay clicks whatever the load does with it
                    log.exception("relay coil %d -> %s: the switched load failed", coil, value)
        return None

    def start(self) -> ModbusRelay:
        blocks = ([SimData(0, count=self.coils, values=self.state[0], datatype=DataType.BITS)],
                  [SimData(0, count=1, values=False, datatype=DataType.BITS)],
                  [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
                  [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)])
        device = SimDevice(id=self.unit, simdata=blocks, action=self._action)
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)

            async def serve() -> None:
                self._server = ModbusTcpServer(device, address=(self.host, self.port))
                await self._server.serve_forever(background=True)
                ready.set()

            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"modbus-relay-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the Modbus relay could not listen on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._server = None

    def __enter__(self) -> ModbusRelay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
