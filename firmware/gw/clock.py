"""UTC time from the modem's network time, so opening hours work offline.

The board's RTC is not trusted (an ESP32 starts at 2000-01-01 after a power
cut); the clock is set from the network's time when a modem reports it
(NITZ, gw.nettime: the call machine passes the lines' "time" events to set())
and by an `AT+CCLK?` of a registered GSM line every 10 minutes, and carried
forward with the board's monotonic tick counter in between. No call waits for
it: deciding a call reads now(), never the modem.

A floor (the running table's `issued_at`) keeps the clock from reporting a
time the controller has already passed; when the network time lags behind
it, the clock restarts *from* the floor and keeps running (floor + elapsed),
so records never share one frozen instant and hourly reports stay right.
"""

import asyncio
import time

EPOCH_2000 = 946684800


class Clock:
    def __init__(self, log=print):
        self.log = log
        # UTC seconds at tick _t0. Before any sync or floor: 2000-01-01 plus the uptime, as an ESP32's
        # RTC says after a power cut; records must carry a time the contract takes (2000..2100).
        self._base = EPOCH_2000
        self._t0 = 0
        self._floor = 0
        self.source = None  # the line that gave the network time (None: not synced)

    def ms(self):
        """Monotonic milliseconds, for durations."""
        return time.ticks_ms()

    def since_ms(self, t0):
        return time.ticks_diff(time.ticks_ms(), t0)

    @property
    def synced(self):
        return self.source is not None

    @property
    def floor(self):
        return self._floor

    @floor.setter
    def floor(self, unix):
        """Never report a time before `unix`; a clock behind it restarts from it and keeps running."""
        if unix <= self._floor:
            return
        self._floor = unix
        if self.now() < unix:
            if self.synced:
                self.log("clock: %s time %d is behind the floor %d; running from the floor" % (
                    self.source, self.now(), unix))
            self._base, self._t0 = unix, time.ticks_ms()

    def set(self, unix, source="modem"):
        now = self.now()
        if unix < self._floor:  # a network clock lagging behind the floor: keep running from it
            unix = max(self._floor, now)
        if self.synced:
            drift = unix - now
            if drift > 2 or drift < -2:
                self.log("clock: %s says %d, was %d (drift %d s)" % (source, unix, now, drift))
        else:
            self.log("clock: synced from %s" % source)
        self._base, self._t0 = unix, time.ticks_ms()
        self.source = source

    def now(self):
        """UTC seconds: the last network time (or floor) plus the ticks since."""
        return self._base + time.ticks_diff(time.ticks_ms(), self._t0) // 1000

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
