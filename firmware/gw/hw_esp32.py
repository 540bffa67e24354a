"""Hardware layer of a real ESP32 board: UARTs, audio bridge pins, watchdog.

The flash is the board's own LittleFS at "/" (mounted by MicroPython's boot, remounted by mount_flash).
"""

import asyncio

import machine

from gw import profiles


class Hardware:
    platform = "esp32"

    def __init__(self, profile_name):
        self.profile = profile_name
        self.spec = profiles.get(profile_name)
        self.wdt_reset = machine.reset_cause() == machine.WDT_RESET  # the app raises "watchdog_reset"
        self._wdt = machine.WDT(timeout=self.spec["wdt_ms"])
        self._bridges = {}
        for pair, pin in self.spec.get("bridge_pins", {}).items():
            self._bridges[pair] = machine.Pin(pin, machine.Pin.OUT, value=0)

    def mount_flash(self):
        """Mount "/" again with a 512-byte LittleFS cache (readsize=128, as gw/blockdev.LFS_OPTIONS on the emulated
        board): the store's record slots then stay inline in LittleFS metadata, no block erase per record. The
        port's boot mounted it with the 128-byte default; if the remount fails that mount comes back (records
        then cost about an erase each, nothing else changes). Read size is no on-flash format parameter."""
        import esp32
        import vfs

        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="vfs")
        if not found:
            return ""
        try:
            vfs.umount("/")
        except OSError:
            return ""
        try:
            vfs.mount(vfs.VfsLfs2(found[0], readsize=128), "/")
        except OSError:
            vfs.mount(vfs.VfsLfs2(found[0]), "/")
        return ""

    def provision(self):
        return None

    def open_line(self, port):
        p = self.spec["ports"][port]
        if p["uart"] > 2:  # UART0 is the console; a third and fourth module hang on an SPI UART bridge
            raise RuntimeError("%s: UART %d is an SC16IS752 channel, whose driver is not written yet: "
                               "this firmware drives GSM modules on UART1 and UART2 only" % (port, p["uart"]))
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

    async def reset_port(self, port):
        """Pulse the module's reset pin (profile `"reset"`, active low) for 100 ms; OSError: no reset line."""
        n = self.spec["ports"][port].get("reset")
        if n is None:
            raise OSError("%s: no reset pin in profile %s" % (port, self.profile))
        pin = machine.Pin(n, machine.Pin.OUT, value=0)
        await asyncio.sleep_ms(100)
        pin.value(1)

    def wdt_feed(self):
        self._wdt.feed()

    def reset(self):
        machine.reset()
