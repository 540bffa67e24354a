"""Vector ops for protocols.tz (see runner.py).

tz.json was generated from independent oracles, never from protocols.tz:
CPython's zoneinfo reading a TZif that holds only the rule as its footer,
glibc (TZ=rule, time.localtime) where zoneinfo is wrong (the zero-based `n`
form, J59 in leap years; such cases carry a "note"), and date.toordinal
for the calendar helpers.

ops:
  tz_local    rule, t -> local (8-tuple), offset, dst; also date_str and
              minutes_of_day, through a parsed Rule and through the string, and
              utc_from_local back to t where the offset holds a day either side
  tz_offset   rule, at: [[t, offset, dst], ...] (instants around transitions)
  tz_days     date [y, m, d] <-> days since 1970-01-01, and its ISO weekday
  tz_invalid  rule -> TzError with path "tz" whose reason holds reason_has
"""

from runner import VectorFailure, expect

from protocols import tz


def _local(case):
    rule = case["rule"]
    t = case["t"]
    want = tuple(case["local"])
    r = tz.parse(rule)
    got = tz.localtime(t, r)
    expect(got == want, "localtime(%d) = %r, want %r" % (t, got, want))
    got = tz.localtime(t, rule)
    expect(got == want, "localtime(%d, str) = %r, want %r" % (t, got, want))
    expect(r.utc_offset(t) == case["offset"], "utc_offset = %r, want %r" % (r.utc_offset(t), case["offset"]))
    expect(r.is_dst(t) is case["dst"], "is_dst = %r, want %r" % (r.is_dst(t), case["dst"]))
    if r.utc_offset(t - 86400) == r.utc_offset(t + 86400) == case["offset"]:  # one meaning of that wall time
        back = tz.utc_from_local(t + case["offset"], r)
        expect(back == t, "utc_from_local(local of %d) = %r" % (t, back))
    d = "%04d-%02d-%02d" % (want[0], want[1], want[2])
    expect(tz.date_str(got) == d, "date_str = %r, want %r" % (tz.date_str(got), d))
    m = want[3] * 60 + want[4]
    expect(tz.minutes_of_day(got) == m, "minutes_of_day = %r, want %r" % (tz.minutes_of_day(got), m))


def _offset(case):
    rule = case["rule"]
    r = tz.parse(rule)
    fresh = tz.parse(rule)
    expect(len(case["at"]) > 0, "no instants")
    for t, off, dst in case["at"]:
        # `r` answers in order (its cached span moves along), `fresh` first
        # sees each instant cold after an unrelated one.
        got = (r.utc_offset(t), r.is_dst(t))
        expect(got == (off, dst), "at %d: (offset, dst) = %r, want %r" % (t, got, (off, dst)))
        fresh.utc_offset(-t)
        got = (fresh.utc_offset(t), fresh.is_dst(t))
        expect(got == (off, dst), "at %d after a far instant: %r, want %r" % (t, got, (off, dst)))
        lt = tz.localtime(t, rule)
        s = t + off
        expect(lt[3] * 3600 + lt[4] * 60 + lt[5] == s % 86400, "at %d: local time of day %r" % (t, lt))


def _days(case):
    y, m, d = case["date"]
    n = case["days"]
    got = tz.days_from_civil(y, m, d)
    expect(got == n, "days_from_civil%r = %r, want %r" % ((y, m, d), got, n))
    got = tz.civil_from_days(n)
    expect(tuple(got) == (y, m, d), "civil_from_days(%d) = %r, want %r" % (n, got, (y, m, d)))
    lt = tz.localtime(n * 86400, "UTC0")
    expect(lt[6] == case["iso_weekday"], "iso weekday %r, want %r" % (lt[6], case["iso_weekday"]))


def _invalid(case):
    try:
        tz.parse(case["rule"])
    except tz.TzError as e:
        expect(e.path == "tz", "path %r, want 'tz'" % (e.path,))
        expect(case["reason_has"] in e.reason, "reason %r lacks %r" % (e.reason, case["reason_has"]))
        return
    raise VectorFailure("parse(%r) did not raise TzError" % (case["rule"],))


OPS = {"tz_local": _local, "tz_offset": _offset, "tz_days": _days, "tz_invalid": _invalid}
