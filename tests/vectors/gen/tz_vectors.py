"""Generate tests/vectors/tz.json from independent oracles (never protocols.tz).

zoneinfo: CPython's zoneinfo reading a TZif whose only content is the footer.
glibc: time.localtime under TZ=<rule> (used where CPython zoneinfo is known
wrong: the zero-based `n` form and J59 in leap years).
"""
import json, sys
from datetime import date, datetime, timezone
import oracle, glibc

ORACLES = {"zoneinfo": oracle.local, "glibc": glibc.local}
cases = []

def utc(*a):
    return int(datetime(*a, tzinfo=timezone.utc).timestamp())

def local_case(name, rule, t, src="zoneinfo", via=None, note=None):
    lt, off, dst = ORACLES[src](via or rule, t)
    c = {"name": name, "op": "tz_local", "rule": rule, "t": t, "local": lt, "offset": off, "dst": dst}
    if note:
        c["note"] = note
    cases.append(c)

def find_changes(rule, lo, hi, src="zoneinfo", via=None):
    """UTC seconds at which the oracle's offset changes in [lo, hi): hourly scan + bisection."""
    f = lambda t: ORACLES[src](via or rule, t)[1:]
    out = []
    prev = f(lo)
    t = lo
    while t < hi:
        n = min(t + 3600, hi)
        cur = f(n)
        if cur != prev:
            a, b = t, n  # f(a) == prev, f(b) != prev
            while b - a > 1:
                m = (a + b) // 2
                if f(m) == prev:
                    a = m
                else:
                    b = m
            out.append(b)
        prev = cur
        t = n
    return out

def offset_case(name, rule, year, src="zoneinfo", via=None, note=None, lo=None, hi=None):
    """Both transitions of `year`, one second before, at, and one hour after each."""
    lo = lo if lo is not None else utc(year, 1, 1)
    hi = hi if hi is not None else utc(year + 1, 1, 1)
    ch = find_changes(rule, lo, hi, src, via)
    at = []
    for x in ch:
        for t in (x - 1, x, x + 3600):
            _, off, dst = ORACLES[src](via or rule, t)
            at.append([t, off, dst])
    c = {"name": name, "op": "tz_offset", "rule": rule, "at": at}
    if note:
        c["note"] = note
    cases.append(c)
    return ch

# ---- fixed offsets, calendar edges
local_case("utc-epoch", "UTC0", 0)
local_case("utc-negative-one", "UTC0", -1)
local_case("utc-negative-far-1901", "UTC0", -2147483649)
local_case("utc-leap-day-2000", "UTC0", utc(2000, 2, 29, 12, 34, 56))
local_case("utc-2100-not-leap-mar1", "UTC0", utc(2100, 3, 1))
local_case("utc-2038-rollover", "UTC0", 2147483648)
local_case("utc-2199-last-second", "UTC0", utc(2200, 1, 1) - 1)
local_case("utc-2200-first-second", "UTC0", utc(2200, 1, 1))
local_case("fixed-plus9-tokyo-style", "<+09>-9", utc(2026, 11, 22, 15, 30, 0))
local_case("fixed-minus3-before-utc-midnight", "<-03>3", utc(2026, 1, 1, 2, 59, 59))
local_case("fixed-plus14-reaches-leap-day", "<+14>-14", utc(2028, 2, 28, 10, 0, 0))
local_case("fixed-plus0545-kathmandu", "<+0545>-5:45", utc(2026, 11, 22, 18, 14, 59))
local_case("fixed-minus0930-marquesas", "<-0930>9:30", utc(2026, 11, 22, 9, 29, 59))
local_case("fixed-negative-t", "<+0530>-5:30", -86400 * 365 - 1)
local_case("fixed-ist-alpha-name", "IST-5:30", utc(2030, 12, 31, 18, 30))
local_case("fixed-full-hms-offset", "<+012345>-1:23:45", utc(2026, 6, 1, 22, 36, 15))
local_case("fixed-plus-sign-offset", "<-05>+5", utc(2026, 6, 1, 4, 0, 0))

# ---- US / Europe, transitions
offset_case("us-eastern-2026-transitions", "EST5EDT,M3.2.0,M11.1.0", 2026)
local_case("us-eastern-summer-2026", "EST5EDT,M3.2.0,M11.1.0", utc(2026, 7, 4, 16))
local_case("us-eastern-negative-t-summer-1969", "EST5EDT,M3.2.0,M11.1.0", utc(1969, 7, 20, 20, 17, 40))
local_case("us-eastern-negative-t-new-year", "EST5EDT,M3.2.0,M11.1.0", -1)
offset_case("us-eastern-default-rules-2026", "EST5EDT", 2026, via="EST5EDT,M3.2.0,M11.1.0",
            note="no rules part: M3.2.0,M11.1.0 applies (oracle fed the explicit rule)")
local_case("us-eastern-default-rules-dst-offset", "EST5EDT", utc(2026, 8, 1, 12), via="EST5EDT,M3.2.0,M11.1.0")
offset_case("us-eastern-explicit-2h-2030", "EST5EDT,M3.2.0/2,M11.1.0/2", 2030)
offset_case("us-pacific-2038", "PST8PDT,M3.2.0,M11.1.0", 2038)
offset_case("kyiv-2026", "EET-2EEST,M3.5.0/3,M10.5.0/4", 2026)
local_case("kyiv-just-after-spring-2026", "EET-2EEST,M3.5.0/3,M10.5.0/4", utc(2026, 3, 29, 1, 0, 0))
offset_case("paris-2027", "CET-1CEST,M3.5.0,M10.5.0/3", 2027)
offset_case("paris-2100", "CET-1CEST,M3.5.0,M10.5.0/3", 2100)
local_case("paris-2150-summer", "CET-1CEST,M3.5.0,M10.5.0/3", utc(2150, 7, 14, 10))
offset_case("london-2026", "GMT0BST,M3.5.0/1,M10.5.0", 2026)
offset_case("dublin-negative-dst-2026", "IST-1GMT0,M10.5.0,M3.5.0/1", 2026,
            note="Europe/Dublin: IST is standard, GMT the (negative) DST of winter")
local_case("dublin-winter-is-dst", "IST-1GMT0,M10.5.0,M3.5.0/1", utc(2027, 1, 15, 12))
local_case("dublin-summer-is-std", "IST-1GMT0,M10.5.0,M3.5.0/1", utc(2027, 7, 15, 12))
offset_case("nuuk-negative-times-2026", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", 2026)
local_case("nuuk-saturday-2300-is-sunday-utc", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", utc(2026, 3, 29, 0, 59, 59))
offset_case("miquelon-style-negative-times-2026", "<-03>3<-02>,M3.2.0/-2,M11.1.0/-1", 2026)
offset_case("gaza-style-50h-2027", "EET-2EEST,M3.4.4/50,M10.4.4/50", 2027)
offset_case("jerusalem-26h-2026", "IST-2IDT,M3.4.4/26,M10.5.0", 2026)
offset_case("cairo-24h-2026", "EET-2EEST,M4.5.5/0,M10.5.4/24", 2026)
offset_case("havana-midnight-2026", "CST5CDT,M3.2.0/0,M11.1.0/1", 2026)
offset_case("troll-plus2-dst-2026", "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", 2026)

# ---- southern hemisphere
offset_case("sydney-2026", "AEST-10AEDT,M10.1.0,M4.1.0/3", 2026)
local_case("sydney-new-year-is-dst", "AEST-10AEDT,M10.1.0,M4.1.0/3", utc(2026, 12, 31, 13, 0, 0))
local_case("sydney-july-is-std", "AEST-10AEDT,M10.1.0,M4.1.0/3", utc(2026, 7, 1))
offset_case("santiago-24h-saturday-2026", "<-04>4<-03>,M9.1.6/24,M4.1.6/24", 2026)
local_case("santiago-january-dst", "<-04>4<-03>,M9.1.6/24,M4.1.6/24", utc(2027, 1, 1, 2, 59, 59))
offset_case("easter-island-22h-2027", "<-06>6<-05>,M9.1.6/22,M4.1.6/22", 2027)
offset_case("auckland-2026", "NZST-12NZDT,M9.5.0,M4.1.0/3", 2026)
offset_case("lord-howe-half-hour-dst-2026", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 2026)
offset_case("chatham-2045-2h45", "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 2045)
offset_case("adelaide-2026", "ACST-9:30ACDT,M10.1.0,M4.1.0/3", 2026)

# ---- transition-time extremes
offset_case("time-25h30m15s-2026", "EST5EDT,M3.2.0/25:30:15,M11.1.0/-1", 2026)
offset_case("time-plus-minus-167h-2026", "EST5EDT,M3.2.0/167,M11.1.0/-167", 2026)
offset_case("explicit-dst-offset-4h30-2026", "EST5EDT4:30,M3.2.0,M11.1.0", 2026)

# ---- Julian forms
offset_case("julian-J60-is-march-1-in-leap-2028", "EST5EDT,J60,J300", 2028)
offset_case("julian-J60-is-march-1-in-2027", "EST5EDT,J60,J300", 2027)
offset_case("julian-J59-is-feb-28-in-leap-2028", "EST5EDT,J59,J365", 2028, src="glibc",
            note="glibc as oracle: CPython zoneinfo puts J59 on Feb 29 in leap years")
offset_case("zero-based-59-is-feb-29-in-leap-2028", "EST5EDT,59,300", 2028, src="glibc",
            note="glibc as oracle: CPython zoneinfo counts the n form from Dec 31")
offset_case("zero-based-59-is-mar-1-in-2027", "EST5EDT,59,300", 2027, src="glibc",
            note="glibc as oracle: CPython zoneinfo counts the n form from Dec 31")
offset_case("zero-based-0-and-364-in-2026", "EST5EDT,0/3,364/1", 2026, src="glibc",
            note="glibc as oracle: CPython zoneinfo counts the n form from Dec 31")

# ---- year-round DST
for t, nm in ((utc(2026, 12, 31, 23, 59, 59), "dec31"), (utc(2027, 1, 1, 0, 0, 0), "jan1-utc"),
              (utc(2027, 1, 1, 4, 59, 59), "jan1-0459"), (utc(2027, 1, 1, 5, 0, 0), "jan1-0500"),
              (utc(2027, 6, 30), "june")):
    local_case("year-round-dst-est-" + nm, "EST5EDT,0/0,J365/25", t,
               note="starts Jan 1 00:00 and ends Dec 31 24:00 + save: DST all year")
local_case("year-round-dst-plus2-J365-26", "<+00>0<+02>-2,0/0,J365/26", utc(2026, 12, 31, 23, 30))
local_case("plus2-J365-25-leaves-one-std-hour", "<+00>0<+02>-2,0/0,J365/25", utc(2026, 12, 31, 23, 30),
           note="with a 2 h save, J365/25 ends an hour before the next start: 23:00-24:00 UTC is std")
local_case("plus2-J365-25-next-year-dst", "<+00>0<+02>-2,0/0,J365/25", utc(2027, 1, 1, 0, 0))

# ---- calendar helpers (oracle: datetime.date.toordinal)
for y, m, d in ((1970, 1, 1), (1969, 12, 31), (2000, 2, 29), (2000, 3, 1), (2100, 2, 28), (2100, 3, 1),
                (2038, 1, 19), (2200, 1, 1), (1600, 2, 29), (1, 1, 1), (9999, 12, 31), (1900, 3, 1)):
    dd = date(y, m, d)
    cases.append({"name": "days-%04d-%02d-%02d" % (y, m, d), "op": "tz_days", "date": [y, m, d],
                  "days": dd.toordinal() - date(1970, 1, 1).toordinal(), "iso_weekday": dd.isoweekday()})

# ---- invalid rules
invalid = [
    ("empty", "", "empty"),
    ("name-only", "UTC", "offset"),
    ("short-name", "UT0", "3 or more"),
    ("quoted-short", "<+9>-9", "3 or more"),
    ("quoted-unclosed", "<+09-9", "'>'"),
    ("quoted-bad-char", "<+0 9>-9", "may only hold"),
    ("colon-file-form", ":Europe/Paris", "name"),
    ("zone-name-not-rule", "Europe/Paris", "offset"),
    ("offset-hours-25", "EST25", "at most 24"),
    ("offset-minutes-60", "EST5:60", "at most 59"),
    ("offset-minutes-one-digit", "EST5:3", "two digits"),
    ("space-before-offset", "EST 5", "offset"),
    ("missing-end", "EST5EDT,M3.2.0", "end"),
    ("trailing-comma", "EST5EDT,M3.2.0,M11.1.0,", "unexpected"),
    ("trailing-text", "EST5EDT,M3.2.0,M11.1.0 ", "unexpected"),
    ("month-13", "EST5EDT,M13.2.0,M11.1.0", "month"),
    ("month-0", "EST5EDT,M0.2.0,M11.1.0", "month"),
    ("week-6", "EST5EDT,M3.6.0,M11.1.0", "week"),
    ("week-0", "EST5EDT,M3.0.0,M11.1.0", "week"),
    ("weekday-7", "EST5EDT,M3.2.7,M11.1.0", "weekday"),
    ("mwd-missing-dot", "EST5EDT,M3.2,M11.1.0", "'.'"),
    ("julian-0", "EST5EDT,J0,J100", "1-365"),
    ("julian-366", "EST5EDT,J1,J366", "1-365"),
    ("zero-based-366", "EST5EDT,0,366", "0-365"),
    ("time-168h", "EST5EDT,M3.2.0/168,M11.1.0", "167"),
    ("time-minus-168h", "EST5EDT,M3.2.0,M11.1.0/-168", "167"),
    ("time-empty", "EST5EDT,M3.2.0/,M11.1.0", "digit"),
    ("bad-date-letter", "EST5EDT,X3.2.0,M11.1.0", "expected Jn"),
    ("not-a-string-int", 42, "string"),
    ("not-a-string-null", None, "string"),
]
for name, rule, part in invalid:
    cases.append({"name": "invalid-" + name, "op": "tz_invalid", "rule": rule, "reason_has": part})

json.dump({"cases": cases}, sys.stdout, indent=1)
