"""Which aggregate rows a UTC day or month call report reads for a window of whole hours: hours, days and
months (call_hours, call_days, call_months, all kept equal to the hours by triggers), each over the
stretch of the window it gives whole, so a year by month reads 12 rows per key, not 365 or 8,760.

A month the window only partly covers is read either as its days and hours inside the window, or as the
month's row less its days and hours outside the window, whichever reads fewer days: a year less a few
hours at each edge costs those few hours, not two months of days. Sums of integers, so both are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

DAY = 86400
FIRST_DAY = DAY  # before it, SQL's truncating division puts the hours of two UTC days in day 0
LAST_MONTH = 253399622400  # 9999-12-01T00:00Z, the last month datetime can name whole
DATE_MIN, DATE_MAX = -62135596800, 253402300799  # what datetime can name (years 1 to 9999)


class Part(NamedTuple):
    """Rows of one aggregate table ("hours", "days" or "months") over [lo, hi), added (sign 1) or taken
    away (sign -1)."""
    rows: str
    lo: int | None
    hi: int | None
    sign: int = 1


def whole_days(lo: int | None, hi: int | None) -> tuple[int | None, int | None]:
    """(first, end): the UTC days [first, end) wholly inside [lo, hi) that the daily aggregates can give
    (end None: open); (None, None) when there are none."""
    first = max(FIRST_DAY, -(-lo // DAY) * DAY) if lo is not None else FIRST_DAY
    end = hi // DAY * DAY if hi is not None else None
    if end is not None and end <= first:
        return None, None
    return first, end


@lru_cache(maxsize=4096)
def month_start(t: int) -> int:
    """The UTC second the UTC month holding `t` (a date) starts."""
    d = datetime.fromtimestamp(t, UTC)
    return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp())


def month_bucket(start: int) -> int:
    """A day or hour bucket's month; a bucket that is no date stays itself (stored calls may carry any time)."""
    return month_start(start) if DATE_MIN <= start <= DATE_MAX else start


def whole_months(first: int, end: int | None) -> tuple[int, int | None] | None:
    """(start, end): the UTC months wholly inside the whole days [first, end) (from `whole_days`) that the
    monthly aggregates can give (end None: open, every month row from start on, which holds the hours
    that are no date under their days, as the days do); start == end when the days only cross the first
    day of a month; None when they lie inside one month."""
    if first > LAST_MONTH:
        return None
    start = month_start(first)
    if start < first:
        start = month_start(start + 32 * DAY)
    if end is None:
        return start, None
    stop = month_start(min(end, LAST_MONTH))
    return (start, stop) if start <= stop else None


def plan(lo: int | None, hi: int | None, interval: str) -> list[Part]:
    """The parts that sum to the window [lo, hi) (whole hours) for "day" or "month" buckets."""
    first, end = whole_days(lo, hi)
    if first is None:
        return [Part("hours", lo, hi)]
    months = whole_months(first, end) if interval == "month" else None
    if months is None:
        return _kept([Part("days", first, end), Part("hours", lo, first), *_tail(end, hi)])
    (m0, m1), parts = months, []
    before = month_start(m0 - 1)  # the month the window starts in, when it starts inside one
    if lo is not None and lo < m0 and before >= FIRST_DAY and lo // DAY * DAY - before < m0 - first:
        day = lo // DAY * DAY
        parts += [Part("days", before, day, -1), Part("hours", day, lo, -1)]
        m0 = before
    else:
        parts += [Part("days", first, m0), Part("hours", lo, first)]
    if m1 is not None:
        after = month_start(m1 + 32 * DAY) if m1 < LAST_MONTH else None
        day = -(-hi // DAY) * DAY
        if after is not None and hi < after and after - day < end - m1:
            parts += [Part("days", day, after, -1), Part("hours", hi, day, -1)]
            m1 = after
        else:
            parts += [Part("days", m1, end), *_tail(end, hi)]
    return _kept([Part("months", m0, m1), *parts])


def _tail(end: int | None, hi: int | None) -> list[Part]:
    """The hours after the last whole day (none for an open end)."""
    return [] if end is None else [Part("hours", end, hi)]


def _kept(parts: list[Part]) -> list[Part]:
    """Without the empty parts (an open side, None, is never empty)."""
    return [p for p in parts if p.lo is None or p.hi is None or p.lo < p.hi]
