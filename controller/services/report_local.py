"""Calls counted in the region's local time: local hours, days, months and years (a local day is not a UTC
one), with the service level beside the outcomes. The Reports page, the year page and the scheduled
reports all count here.

The window is cut where the zone's UTC offset changes; each piece is counted by controller.services.reports
with the offset added before bucketing, so a bucket is local wall time whatever the season.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from controller.services import reports

PERIODS = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
DEFAULT_WITHIN_S = 20  # service level: answered within this many seconds of ringing
MAX_WITHIN_S = 3600
FIGURES = (*reports.COUNTS, "within")


def zone_of(name: str | None) -> ZoneInfo:
    """A zone by IANA name; UTC for a name this machine does not know (a stored row may hold anything)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def region_zone(s, city: str | None = None) -> ZoneInfo:
    """The city's zone, else the one most cities share (the region's)."""
    zones = reports.city_zones(s)
    if city:
        return zone_of(zones.get(city))
    return zone_of((Counter(zones.values()).most_common(1) or [("UTC", 0)])[0][0])


def local_start(d: date, tz: ZoneInfo) -> int:
    """The UTC second local day `d` starts."""
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())


def spans(lo: int, hi: int, tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """[(from, to, UTC offset)]: the window cut where the zone's offset changes (checked every hour)."""
    out: list[list[int]] = []
    for t in range(lo, hi, 3600):
        off = int(datetime.fromtimestamp(t, tz).utcoffset().total_seconds())
        if out and out[-1][2] == off:
            out[-1][1] = min(hi, t + 3600)
        else:
            out.append([t, min(hi, t + 3600), off])
    return [(a, b, off) for a, b, off in out]


def finish(row: dict) -> dict:
    """Counts -> counts, ratios, the service level and the unanswered calls (neither answered nor abandoned)."""
    row = reports.finish(row)
    row["unanswered"] = row["offered"] - row["answered"] - row["abandoned"]
    return row


def by_period(s, group: str, interval: str, lo: int, hi: int, tz: ZoneInfo, within_s: int = DEFAULT_WITHIN_S,
              city: str | None = None, none_key: str = "(none)") -> dict:
    """{periods, rows, totals} of the calls that started in [lo, hi) (UTC seconds on local whole hours):
    rows per local period and key (only where there were calls); periods: every period of the window, in
    order, summed over keys; totals over all. Counted in local hours, or days for longer periods."""
    fmt = PERIODS[interval]
    size = "hour" if interval == "hour" else "day"
    periods: dict[str, dict] = {}
    cells: dict[tuple, dict] = {}
    for a, b, off in spans(lo, hi, tz):
        for t in range(a, b, 3600):
            name = datetime.fromtimestamp(t + off, UTC).strftime(fmt)
            periods.setdefault(name, {"period": name, **dict.fromkeys(FIGURES, 0)})
        for r in reports.counted(s, group, size, a, b, city=city, shift=off, within_s=within_s):
            name = datetime.fromtimestamp(r["start"], UTC).strftime(fmt)
            key = none_key if r["key"] is None else str(r["key"])
            cell = cells.setdefault((name, key), {"period": name, "key": key, **dict.fromkeys(FIGURES, 0)})
            for c in FIGURES:
                cell[c] += r[c]
                if name in periods:
                    periods[name][c] += r[c]
    rows = [finish(cells[k]) for k in sorted(cells)]
    totals = finish({c: sum(p[c] for p in periods.values()) for c in FIGURES})
    return {"periods": [finish(p) for p in periods.values()], "rows": rows, "totals": totals}
