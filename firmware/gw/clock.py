"""UTC time from the modem's network time, so opening hours work offline.

The board's RTC is not trusted (an ESP32 starts at 2000-01-01 after a power
cut); the clock is set from `AT+CCLK?` of any registered GSM line and
carried forward with the monotonic tick counter between refreshes.
"""

import asyncio
import time


class Clock:
    def __init__(self, log=print):
        self.log = log
        self._base = None  # UTC seconds at tick _t0
        self._t0 = 0
        self.floor = 0  # never report a time before this (e.g. the running table's issued_at)
        self.source = None

    def ms(self):
        """Monotonic milliseconds, for durations."""
        return time.ticks_ms()

    def since_ms(self, t0):
        return time.ticks_diff(time.ticks_ms(), t0)

    @property
    def synced(self):
        return self._base is not None

    def set(self, unix, source="modem"):
        if self._base is not None:
            drift = unix - self.now()
            if drift > 2 or drift < -2:
                self.log("clock: %s says %d, was %d (drift %d s)" % (source, unix, self.now(), drift))
        self._base = unix
        self._t0 = time.ticks_ms()
        self.source = source

    def now(self):
        """UTC seconds; before the first sync, the floor plus uptime."""
        if self._base is None:
            return self.floor + time.ticks_diff(time.ticks_ms(), 0) // 1000
        return max(self.floor, self._base + time.ticks_diff(time.ticks_ms(), self._t0) // 1000)

    async def refresh(self, line, timeout_ms=500):
        """Read the network time from `line` now (each inbound call does, so opening hours
        follow the operator's clock to the second); keep the carried clock on failure."""
        query = getattr(line, "clock_query", None)
        if query is None:
            return
        try:
            got = await asyncio.wait_for_ms(query(), timeout_ms)
        except Exception:
            return
        if got:
            self.set(got, line.name)

    async def keep_synced(self, lines, every_s=600, retry_s=1):
        """Refresh from the first GSM line that knows the network time."""
        while True:
            got = None
            for line in lines:
                query = getattr(line, "clock_query", None)
                if query is None or not line.ready:
                    continue
                try:
                    got = await query()
                except Exception as e:
                    self.log("clock: " + line.name + " " + repr(e))
                if got:
                    self.set(got, line.name)
                    break
            await asyncio.sleep(every_s if got else retry_s)
