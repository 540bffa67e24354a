"""POSIX TZ rules (the footer of a TZif file) and UTC -> local time.

A routing table carries its gateway's time zone as the POSIX TZ string found
at the end of the zone's TZif file (DESIGN section 4), for example
`EET-2EEST,M3.5.0/3,M10.5.0/4`. This module parses such a rule and turns UTC
seconds into local wall time, with integer calendar arithmetic only: no
`time.gmtime` (board epochs differ), no `datetime`, no `re`. It runs unchanged
on CPython 3.11+ and MicroPython 1.29.

Grammar (POSIX, with the RFC 9636 extensions TZif footers use):

    std offset [dst [offset] [,start[/time],end[/time]]]

* names: 3 or more letters, or `<...>` holding 3 or more of `A-Za-z0-9+-`;
* offset: `[+-]hh[:mm[:ss]]`, hours 0-24, positive WEST of Greenwich
  (`EST5` is UTC-5); the DST offset defaults to one hour east of std;
* start/end: `Jn` (1-365, Feb 29 never counted), `n` (0-365, Feb 29
  counted) or `Mm.w.d` (month 1-12, week 1-5 where 5 = last, weekday 0-6
  with 0 = Sunday); without them the US rule `M3.2.0,M11.1.0` applies;
* time: `[+-]hh[:mm[:ss]]`, hours -167..167, default `02:00`; the start time
  is read in standard time, the end time in DST.

DST may start later in the year than it ends (southern hemisphere, or
Europe/Dublin whose "DST" is winter with a negative save). A rule whose DST
starts Jan 1 00:00 and ends Dec 31 at 24:00 plus the save (`EST5EDT,0/0,J365/25`)
is DST all year: at each instant the latest transition wins, and when two
coincide the one of the later year does (tzcode reads rules the same way;
only contrived rules whose periods overlap from year to year read
differently in glibc or zoneinfo).

`Rule` caches the span of UTC seconds its last answer holds for, so a
gateway deciding thousands of calls pays two comparisons per call.
"""

from protocols.errors import ContractError


class TzError(ContractError):
    """A time zone rule is malformed; `path` is always "tz"."""

    def __init__(self, reason):
        ContractError.__init__(self, "tz", reason)


# ---------------------------------------------------------------- calendar

_CUM = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def month_days(y, m):
    """Days in month m (1-12) of year y."""
    return 29 if m == 2 and _leap(y) else _MDAYS[m - 1]


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of the proleptic Gregorian date y-m-d (any sign)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m + 9 if m <= 2 else m - 3
    doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * mp + 2) // 5 + d - 1
    return era * 146097 + doe - 719468


def civil_from_days(n):
    """(year, month, day) of the date `n` days after 1970-01-01 (any sign)."""
    z = n + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    if mp < 10:
        return yoe + era * 400, mp + 3, d
    return yoe + era * 400 + 1, mp - 9, d


def _rule_day(date, y):
    """Day number (days since 1970-01-01) on which a rule date falls in year y."""
    kind = date[0]
    if kind == "J":
        n = date[1]
        day = days_from_civil(y, 1, 1) + n - 1
        if n >= 60 and _leap(y):
            day += 1
        return day
    if kind == "D":
        return days_from_civil(y, 1, 1) + date[1]
    m = date[1]
    w = date[2]
    first = days_from_civil(y, m, 1)
    # 1970-01-01 was a Thursday: weekday (0 = Sunday) of day n is (n + 4) % 7.
    day = first + (date[3] - first - 4) % 7 + 7 * (w - 1)
    if w == 5:
        if day >= first + month_days(y, m):
            day -= 7
    return day


# ---------------------------------------------------------------- parsing

_DIGITS = "0123456789"
_ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_QUOTED = _ALPHA + _DIGITS + "+-"
_DEFAULT_START = ("M", 3, 2, 0)
_DEFAULT_END = ("M", 11, 1, 0)


def _show(s):
    return repr(s if len(s) <= 60 else s[:57] + "...")


def _fail(s, i, what):
    where = "at the end" if i >= len(s) else "at position " + str(i)
    raise TzError(what + " " + where + " of " + _show(s))


def _name(s, i, what):
    n = len(s)
    if i < n and s[i] == "<":
        j = s.find(">", i + 1)
        if j < 0:
            _fail(s, i, what + " name opens '<' without a closing '>'")
        for k in range(i + 1, j):
            if s[k] not in _QUOTED:
                _fail(s, k, what + " name in <...> may only hold A-Z a-z 0-9 + -, not " + repr(s[k]))
        if j - i - 1 < 3:
            _fail(s, i, what + " name in <...> needs 3 or more characters")
        return s[i + 1:j], j + 1
    j = i
    while j < n and s[j] in _ALPHA:
        j += 1
    if j - i < 3:
        _fail(s, i, what + " name must be 3 or more letters or quoted as <...>")
    return s[i:j], j


def _int(s, i, most, what):
    n = len(s)
    j = i
    while j < n and s[j] in _DIGITS and j - i < most:
        j += 1
    if j == i:
        _fail(s, i, what + ": expected a digit")
    if j < n and s[j] in _DIGITS:
        _fail(s, j, what + ": too many digits")
    return int(s[i:j]), j


def _hms(s, i, hdigits, hmax, what):
    """[+-]hh[:mm[:ss]] -> (signed seconds, next index)."""
    n = len(s)
    sign = 1
    if i < n and s[i] in "+-":
        if s[i] == "-":
            sign = -1
        i += 1
    h, j = _int(s, i, hdigits, what)
    if h > hmax:
        _fail(s, i, what + ": hours must be at most " + str(hmax))
    i = j
    total = h * 3600
    for unit in (60, 1):
        if i >= n or s[i] != ":":
            break
        if i + 3 > n or s[i + 1] not in _DIGITS or s[i + 2] not in _DIGITS:
            _fail(s, i + 1, what + ": minutes and seconds take two digits")
        v = int(s[i + 1:i + 3])
        if v > 59:
            _fail(s, i + 1, what + ": minutes and seconds must be at most 59")
        total += v * unit
        i += 3
    if i < n and s[i] in _DIGITS:
        _fail(s, i, what + ": too many digits")
    return sign * total, i


def _date(s, i, what):
    n = len(s)
    if i < n and s[i] == "J":
        v, j = _int(s, i + 1, 3, what + " Jn")
        if not 1 <= v <= 365:
            _fail(s, i + 1, what + " Jn: day must be 1-365")
        return ("J", v), j
    if i < n and s[i] == "M":
        m, j = _int(s, i + 1, 2, what + " Mm.w.d month")
        if not 1 <= m <= 12:
            _fail(s, i + 1, what + " Mm.w.d: month must be 1-12")
        i = j
        if i >= n or s[i] != ".":
            _fail(s, i, what + " Mm.w.d: expected '.' after the month")
        w, i = _int(s, i + 1, 1, what + " Mm.w.d week")
        if not 1 <= w <= 5:
            _fail(s, i - 1, what + " Mm.w.d: week must be 1-5")
        if i >= n or s[i] != ".":
            _fail(s, i, what + " Mm.w.d: expected '.' after the week")
        d, i = _int(s, i + 1, 1, what + " Mm.w.d weekday")
        if d > 6:
            _fail(s, i - 1, what + " Mm.w.d: weekday must be 0-6 (0 = Sunday)")
        return ("M", m, w, d), i
    if i < n and s[i] in _DIGITS:
        v, j = _int(s, i, 3, what + " day")
        if v > 365:
            _fail(s, i, what + " day: must be 0-365")
        return ("D", v), j
    _fail(s, i, what + ": expected Jn, n or Mm.w.d")


def _date_time(s, i, what):
    date, i = _date(s, i, what + " date")
    secs = 7200
    if i < len(s) and s[i] == "/":
        secs, i = _hms(s, i + 1, 3, 167, what + " time")
    return date, secs, i


def parse(rule):
    """POSIX TZ string -> Rule; raises TzError saying what is wrong."""
    if type(rule) is not str:
        raise TzError("must be a POSIX TZ string, not " + type(rule).__name__)
    s = rule
    n = len(s)
    if n == 0:
        raise TzError("is empty; a POSIX TZ rule such as UTC0 is needed")
    std, i = _name(s, 0, "std")
    if i >= n:
        _fail(s, i, "std name must be followed by its UTC offset (e.g. UTC0, EST5)")
    off, i = _hms(s, i, 2, 24, "std offset")
    if i == n:
        return Rule(s, std, -off)
    dst, i = _name(s, i, "dst")
    dst_off = -off + 3600
    if i < n and s[i] != ",":
        off2, i = _hms(s, i, 2, 24, "dst offset")
        dst_off = -off2
    if i == n:
        return Rule(s, std, -off, dst, dst_off, _DEFAULT_START, 7200, _DEFAULT_END, 7200)
    if s[i] != ",":
        _fail(s, i, "expected ',' before the DST start")
    start, start_t, i = _date_time(s, i + 1, "start")
    if i >= n or s[i] != ",":
        _fail(s, i, "expected ',' before the DST end")
    end, end_t, i = _date_time(s, i + 1, "end")
    if i != n:
        _fail(s, i, "unexpected text after the DST end")
    return Rule(s, std, -off, dst, dst_off, start, start_t, end, end_t)


# ---------------------------------------------------------------- rules


class Rule:
    """A parsed POSIX TZ rule. Offsets are seconds EAST of UTC.

    `text`, `std_name`, `std_offset`; `dst_name` and `dst_offset` are None
    for a rule without DST; `start`/`end` are ("M", m, w, d), ("J", n) or
    ("D", n) and `start_time`/`end_time` seconds of local time.
    """

    def __init__(self, text, std_name, std_offset, dst_name=None, dst_offset=None,
                 start=None, start_time=7200, end=None, end_time=7200):
        self.text = text
        self.std_name = std_name
        self.std_offset = std_offset
        self.dst_name = dst_name
        self.dst_offset = dst_offset
        self.start = start
        self.start_time = start_time
        self.end = end
        self.end_time = end_time
        # (lo, hi, offset, is_dst): the answer for lo <= t < hi. One tuple,
        # replaced whole, so concurrent readers never see half an update.
        self._span = (1, 0, std_offset, False)
        self._years = {}

    def __repr__(self):
        return "Rule(" + repr(self.text) + ")"

    def transitions(self, year):
        """(dst_start, dst_end) in UTC seconds for the rule's dates in `year`, or None without DST."""
        if self.dst_name is None:
            return None
        c = self._years.get(year)
        if c is None:
            c = (_rule_day(self.start, year) * 86400 + self.start_time - self.std_offset,
                 _rule_day(self.end, year) * 86400 + self.end_time - self.dst_offset)
            if len(self._years) >= 8:
                self._years = {}
            self._years[year] = c
        return c

    def _find(self, t):
        if type(t) is not int:
            raise TypeError("t must be an integer of UTC seconds")
        if self.dst_name is None:
            span = (-(1 << 62), 1 << 62, self.std_offset, False)
            self._span = span
            return span
        # Transition times are within +-167 h of their day and offsets within
        # 25 h, so every transition of year Y falls within 8 days of Y; the
        # years around t's (standard-time) year hold the ones that matter.
        y = civil_from_days((t + self.std_offset) // 86400)[0]
        lo = hi = None
        lo_key = hi_key = 0
        dst = False
        for yy in (y - 2, y - 1, y, y + 1, y + 2):
            tr = self.transitions(yy)
            for k in (0, 1):
                at = tr[k]
                key = yy * 2 + k
                if at <= t:
                    if lo is None or at > lo or (at == lo and key > lo_key):
                        lo = at
                        lo_key = key
                        dst = k == 0
                elif hi is None or at < hi or (at == hi and key < hi_key):
                    hi = at
                    hi_key = key
        span = (lo, hi, self.dst_offset if dst else self.std_offset, dst)
        self._span = span
        return span

    def utc_offset(self, t):
        """Seconds east of UTC in effect at UTC second `t`."""
        span = self._span
        if span[0] <= t < span[1]:
            return span[2]
        return self._find(t)[2]

    def is_dst(self, t):
        """True when the rule's DST period is in effect at UTC second `t`."""
        span = self._span
        if span[0] <= t < span[1]:
            return span[3]
        return self._find(t)[3]


# ---------------------------------------------------------------- local time

_last = None  # (text, Rule) of the last string given to localtime
_last_day = None  # (day number, year, month, day, iso weekday, yearday)


def _rule_of(rule):
    global _last
    if type(rule) is Rule:
        return rule
    c = _last
    if c is not None and c[0] == rule:
        return c[1]
    r = parse(rule)
    _last = (rule, r)
    return r


def localtime(t, rule):
    """UTC seconds -> (year, month, day, hour, minute, second, iso_weekday, yearday).

    `rule` is a Rule or a POSIX TZ string (the last string parsed is kept).
    iso_weekday is 1 = Monday .. 7 = Sunday; yearday is 1-366.
    """
    global _last_day
    r = _rule_of(rule)
    if type(t) is not int:
        raise TypeError("t must be an integer of UTC seconds")
    s = t + r.utc_offset(t)
    n = s // 86400
    sec = s - n * 86400
    c = _last_day
    if c is None or c[0] != n:
        y, m, d = civil_from_days(n)
        yd = _CUM[m - 1] + d
        if m > 2 and _leap(y):
            yd += 1
        c = (n, y, m, d, (n + 3) % 7 + 1, yd)
        _last_day = c
    return (c[1], c[2], c[3], sec // 3600, sec // 60 % 60, sec % 60, c[4], c[5])


def utc_from_local(local, rule):
    """Local wall seconds (the epoch counted as if the zone were UTC) -> UTC seconds in `rule`'s zone.

    The offset is the zone's at that instant: taken once at a guess, then again where the guess
    lands, so a wall time just after a change of offset still comes out right. `rule`: a Rule or
    a POSIX TZ string."""
    r = _rule_of(rule)
    return local - r.utc_offset(local - r.utc_offset(local))


def date_str(lt):
    """Local tuple -> "YYYY-MM-DD"."""
    return "%04d-%02d-%02d" % (lt[0], lt[1], lt[2])


def minutes_of_day(lt):
    """Local tuple -> minutes since local midnight (0-1439)."""
    return lt[3] * 60 + lt[4]


# ---------------------------------------------------------------- CPython side
# Used by the controller to take a zone's rule from its TZif file. No I/O
# here: the caller reads the file (controller/timezones.py). It is plain
# byte arithmetic, so it also runs on MicroPython, which has no use for it.


def _u32(data, at):
    return int.from_bytes(data[at:at + 4], "big")


def _tzif_header(data, at):
    """Check a TZif header at `at`; return (version byte, size of its data block for 4-byte times)."""
    if len(data) < at + 44:
        raise TzError("TZif data is truncated: header cut short")
    if bytes(data[at:at + 4]) != b"TZif":
        raise TzError("not a TZif file: bad magic")
    isut = _u32(data, at + 20)
    isstd = _u32(data, at + 24)
    leap = _u32(data, at + 28)
    timecnt = _u32(data, at + 32)
    typecnt = _u32(data, at + 36)
    charcnt = _u32(data, at + 40)
    return data[at + 4], (timecnt, typecnt, charcnt, leap, isstd, isut)


def footer_from_tzif(data):
    """POSIX TZ string from the footer of a TZif v2/v3/v4 file's bytes."""
    if type(data) not in (bytes, bytearray, memoryview):
        raise TzError("TZif data must be bytes")
    data = bytes(data)
    version, c = _tzif_header(data, 0)
    if version == 0:
        raise TzError("TZif version 1 file has no footer with a POSIX rule")
    if version not in (0x32, 0x33, 0x34):
        raise TzError("unknown TZif version byte " + str(version))
    timecnt, typecnt, charcnt, leap, isstd, isut = c
    at = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    v2, c = _tzif_header(data, at)
    if v2 != version:
        raise TzError("TZif second header's version differs from the first")
    timecnt, typecnt, charcnt, leap, isstd, isut = c
    at += 44 + timecnt * 9 + typecnt * 6 + charcnt + leap * 12 + isstd + isut
    if len(data) < at + 2 or data[at] != 10:
        raise TzError("TZif data is truncated: no footer after the v2 data block")
    end = data.find(b"\n", at + 1)
    if end < 0:
        raise TzError("TZif footer has no closing newline")
    if end == at + 1:
        raise TzError("TZif footer is empty: the zone has no rule for times after its table")
    try:
        return data[at + 1:end].decode()
    except Exception:
        raise TzError("TZif footer is not valid text")
