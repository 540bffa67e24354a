"""What the call machine's scenario scripts (calls_scenarios.py, outbound_scenarios.py) give it besides
lines and a clock: a store that numbers records in memory, and hardware that notes its audio bridges."""


class Snaps:
    def __init__(self, turns):
        self.turns = turns


class Store:
    def __init__(self, turns=None):
        self.records = []
        if turns is not None:  # the turns a snapshot brought back over a reboot (gw.counters.Snapshots)
            self.snaps = Snaps(turns)

    def append(self, rec):
        rec["seq"] = len(self.records) + 1
        self.records.append(rec)
        return rec["seq"]


class Hw:
    def __init__(self):
        self.bridges = []

    def bridge(self, a, b):
        self.bridges.append((a, b))

    def unbridge(self, a, b):
        pass
