"""Hardware layer of a real ESP32 board: UARTs, audio bridge pins, watchdog.

The flash is the board's own LittleFS at "/" (mounted by MicroPython's boot).
"""

import asyncio

import machine

from gw import profiles


class Hardware:
    platform = "esp32"

    def __init__(self, profile_name):
        self.profile = profile_name
        self.spec = profiles.get(profile_name)
        self._wdt = machine.WDT(timeout=self.spec["wdt_ms"])
        self._bridges = {}
        for pair, pin in self.spec.get("bridge_pins", {}).items():
            self._bridges[pair] = machine.Pin(pin, machine.Pin.OUT, value=0)

    def mount_flash(self):
        return ""

    def provision(self):
        return None

    def open_line(self, port):
        p = self.spec["ports"][port]
        uart = machine.UART(p["uart"], baudrate=115200, tx=p["tx"], rx=p["rx"], rxbuf=1024, timeout=0)
        return asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {})

    def port_kind(self, port):
        return self.spec["ports"][port]["kind"]

    def ports(self):
        return list(self.spec["ports"])

    def _pin(self, a, b):
        return self._bridges.get(a + ":" + b) or self._bridges.get(b + ":" + a)

    def bridge(self, a, b):
        pin = self._pin(a, b)
        if pin is not None:
            pin.value(1)

    def unbridge(self, a, b):
        pin = self._pin(a, b)
        if pin is not None:
            pin.value(0)

    def wdt_feed(self):
        self._wdt.feed()

    def reset(self):
        machine.reset()
