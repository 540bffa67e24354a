# The board's clock on MicroPython with a scripted tick counter: prints one JSON line of readings.
import json

import gw.clock as clockmod


class Ticks:
    """Stands in for `time` inside gw.clock: ms advance only when the scenario says so."""

    def __init__(self):
        self.t = 5000

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b


ticks = Ticks()
clockmod.time = ticks
out = {}

# network time lagging 3 h behind the running table's issued_at: runs from the floor, never frozen
c = clockmod.Clock(log=lambda *a: None)
c.set(1700000000 - 3 * 3600, "gsm1")
c.floor = 1700000000
readings = [c.now()]
for _ in range(3):
    ticks.t += 61000
    c.set(1700000000 - 3 * 3600 + (ticks.t - 5000) // 1000, "gsm1")  # every refresh still lags
    readings.append(c.now())
out["lagging"] = readings

# floor first (table applied before any network time), then a network time ahead of it wins
c = clockmod.Clock(log=lambda *a: None)
c.floor = 1700000000
a = c.now()
ticks.t += 10000
b = c.now()
c.set(1700000500, "gsm1")
out["floor_then_network"] = [a, b, c.now(), c.synced]

# a floor below the running time changes nothing
c = clockmod.Clock(log=lambda *a: None)
c.set(1700000000, "gsm1")
ticks.t += 2000
c.floor = 1600000000
out["low_floor"] = [c.now()]
print(json.dumps(out))
