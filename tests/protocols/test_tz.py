"""protocols.tz on CPython: the shared vectors, every zone of this machine against zoneinfo,
the TZif footer reader, controller.timezones, and parser fuzzing."""

import os
import shutil
import struct
import subprocess
import sys
import zoneinfo
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import timezones
from protocols import tz

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
if str(VECTORS) not in sys.path:
    sys.path.insert(0, str(VECTORS))

import ops_tz  # noqa: E402
import runner  # noqa: E402

TZ_CASES = [case for fname, case in runner.cases() if fname == "tz.json"]


# ---------------------------------------------------------------- vectors


def test_vector_file_is_big_enough_and_names_are_unique():
    names = [c["name"] for c in TZ_CASES]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert {c["op"] for c in TZ_CASES} <= set(ops_tz.OPS)


@pytest.mark.parametrize("case", TZ_CASES, ids=[c["name"] for c in TZ_CASES])
def test_vector(case):
    runner.run_case(case, ops_tz.OPS)


def _micropython():
    for cand in (Path(sys.executable).parent / "micropython", shutil.which("micropython")):
        if cand and os.access(str(cand), os.X_OK):
            return str(cand)
    return None


@pytest.mark.micropython
def test_vectors_on_micropython():
    mp = _micropython()
    if mp is None:
        pytest.skip("no micropython binary")
    env = dict(os.environ, MICROPYPATH=".:tests/vectors")
    out = subprocess.run([mp, "tests/vectors/runner.py", "tz::"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "vectors: %d passed, 0 failed" % len(TZ_CASES) in out.stdout, out.stdout


# ---------------------------------------------------------------- every zone vs zoneinfo

WINDOW_START = int(datetime(2025, 11, 1, tzinfo=UTC).timestamp())
WINDOW_END = int(datetime(2027, 12, 1, tzinfo=UTC).timestamp())
STEP = 3 * 3600  # every third hour, plus every hour of a step holding a change, plus the exact seconds

# Zones whose TZif table governs the window and deliberately differs from the
# footer, which only describes times after the table's last transition. For
# these the sweep compares only instants after that last transition.
TABLE_DIFFERS_FROM_FOOTER = {
    "Africa/Casablanca": "Morocco's Ramadan switches to +00 are listed one by one until 2087; "
                         "the footer <+01>-1 only holds after that",
    "Africa/El_Aaiun": "same Ramadan table as Africa/Casablanca, footer <+01>-1",
}


def _tzif_transitions(data):
    """Transition instants of the v2 (64-bit) block of a TZif file."""
    def counts(at):
        return struct.unpack(">6l", data[at + 20:at + 44])
    isut, isstd, leap, timecnt, typecnt, charcnt = counts(0)
    at = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    isut, isstd, leap, timecnt, typecnt, charcnt = counts(at)
    return struct.unpack(">%dq" % timecnt, data[at + 44:at + 44 + 8 * timecnt])


def _zones():
    out = []
    for name in sorted(zoneinfo.available_timezones()):
        data = timezones.tzif_bytes(name)
        if data is None or data[4:5] not in (b"2", b"3", b"4"):
            continue
        try:
            footer = tz.footer_from_tzif(data)
        except tz.TzError:  # empty footer: the zone has no rule past its table
            continue
        assert timezones.zone_rule(name) == footer
        trans = _tzif_transitions(data)
        out.append((name, footer, trans[-1] if trans else None))
    return out


def _wall(t, z):
    d = datetime.fromtimestamp(t, z)
    return (d.year, d.month, d.day, d.hour, d.minute, d.second, d.isoweekday(), d.timetuple().tm_yday)


def _first_change(f, a, b):
    """Smallest x in (a, b] with f(x) != f(a); f changes at most once there."""
    fa = f(a)
    if f(b) == fa:
        return None
    while b - a > 1:
        m = (a + b) // 2
        if f(m) == fa:
            a = m
        else:
            b = m
    return b


def _sweep(name, footer, z):
    """Mismatches between tz.localtime(footer) and zoneinfo for `name` over the window."""
    rule = tz.parse(footer)
    bad = []

    def zoff(t):
        return datetime.fromtimestamp(t, z).utcoffset().total_seconds()

    def check(t):
        got = tz.localtime(t, rule)
        want = _wall(t, z)
        if got != want:
            bad.append((t, got, want))

    prev = None
    changes = 0
    for t in range(WINDOW_START, WINDOW_END + 1, STEP):
        check(t)
        cur = (zoff(t), rule.utc_offset(t))
        if prev is not None and cur != prev:
            a = t - STEP
            changes += 1
            for h in range(a + 3600, t, 3600):
                check(h)
            zx = _first_change(zoff, a, t)
            mx = _first_change(rule.utc_offset, a, t)
            if zx != mx:
                bad.append(("transition", zx, mx))
            for x in {zx, mx} - {None}:
                check(x - 1)
                check(x)
        prev = cur
    return bad, changes


ZONES = _zones()


@pytest.mark.slow
def test_zone_sweep_matches_zoneinfo_for_every_zone():
    """Every zone with a POSIX footer: local wall time, ISO weekday and yearday match zoneinfo
    every 3 hours from 2025-11-01 to 2027-12-01 UTC, every hour around each change, and each
    change happens at the same second."""
    assert len(ZONES) > 300, "expected a full tz database on this machine"
    failures = {}
    total_changes = 0
    for name, footer, last in ZONES:
        z = zoneinfo.ZoneInfo(name)
        bad, changes = _sweep(name, footer, z)
        total_changes += changes
        if name in TABLE_DIFFERS_FROM_FOOTER:
            # Only instants the footer governs count; the transition check is per window.
            bad = [b for b in bad if b[0] != "transition" and last is not None and b[0] > last]
        if bad:
            failures[name] = (footer, bad[:3], len(bad))
    assert not failures, failures
    assert total_changes > 300  # DST zones really were exercised


def test_zones_excluded_from_table_check_still_exist_and_differ():
    """Keep the exclusion list honest: each excluded zone exists, its table runs past the window,
    and the footer alone really disagrees with zoneinfo somewhere in the window."""
    by_name = {n: (f, last) for n, f, last in ZONES}
    for name in TABLE_DIFFERS_FROM_FOOTER:
        if name not in by_name:
            continue
        footer, last = by_name[name]
        assert last is not None and last > WINDOW_END
        bad, _ = _sweep(name, footer, zoneinfo.ZoneInfo(name))
        assert bad, name + " now agrees with its footer: drop it from the exclusions"


# ---------------------------------------------------------------- footer_from_tzif


def test_footer_from_real_files():
    assert tz.footer_from_tzif(timezones.tzif_bytes("Europe/Paris")) == "CET-1CEST,M3.5.0,M10.5.0/3"
    assert tz.footer_from_tzif(timezones.tzif_bytes("America/New_York")) == "EST5EDT,M3.2.0,M11.1.0"
    assert tz.footer_from_tzif(timezones.tzif_bytes("UTC")) == "UTC0"
    assert tz.footer_from_tzif(bytearray(timezones.tzif_bytes("Asia/Tokyo"))) == "JST-9"
    assert tz.footer_from_tzif(memoryview(timezones.tzif_bytes("Asia/Kolkata"))) == "IST-5:30"


def _tzif(version, footer, timecnt=2):
    """A small TZif file: `timecnt` transitions between two types."""
    def header():
        return b"TZif" + version + b"\0" * 15 + struct.pack(">6l", 2, 2, 0, timecnt, 2, 8)

    def block(fmt):
        trans = struct.pack(">%d%s" % (timecnt, fmt), *range(0, 1000 * timecnt, 1000))
        idx = bytes(i % 2 for i in range(timecnt))
        types = struct.pack(">lbB", 0, 0, 0) + struct.pack(">lbB", 3600, 1, 4)
        return trans + idx + types + b"UTC\0DST\0" + b"\0\0" + b"\0\0"

    if version == b"\0":
        return header() + block("l")
    return header() + block("l") + header() + block("q") + b"\n" + footer + b"\n"


def test_footer_from_crafted_files():
    for v in (b"2", b"3", b"4"):
        assert tz.footer_from_tzif(_tzif(v, b"<+03>-3")) == "<+03>-3"
    assert tz.footer_from_tzif(_tzif(b"2", b"EST5EDT,M3.2.0,M11.1.0", timecnt=0)) == "EST5EDT,M3.2.0,M11.1.0"


@pytest.mark.parametrize("data, why", [
    (_tzif(b"\0", b""), "version 1"),
    (_tzif(b"2", b""), "empty"),
    (b"TZjf" + _tzif(b"2", b"UTC0")[4:], "magic"),
    (_tzif(b"5", b"UTC0"), "version byte"),
    (_tzif(b"2", b"UTC0")[:30], "truncated"),
    (_tzif(b"2", b"UTC0")[:60], "truncated"),
    (_tzif(b"2", b"UTC0")[:-1], "closing newline"),
    (_tzif(b"2", b"UTC0")[:-6], "no footer"),
    (_tzif(b"2", b"\xff\xfe0"), "not valid text"),
    (b"", "truncated"),
    ("TZif2", "bytes"),
    (None, "bytes"),
])
def test_footer_from_bad_bytes(data, why):
    with pytest.raises(tz.TzError) as e:
        tz.footer_from_tzif(data)
    assert e.value.path == "tz"
    assert why in e.value.reason


def test_footer_second_header_version_must_match():
    data = _tzif(b"2", b"UTC0")
    second = data.index(b"TZif", 4)
    data = data[:second + 4] + b"3" + data[second + 5:]
    with pytest.raises(tz.TzError, match="differs"):
        tz.footer_from_tzif(data)


# ---------------------------------------------------------------- controller.timezones


def test_zone_rule_known_zones():
    assert timezones.zone_rule("Europe/Kyiv") == "EET-2EEST,M3.5.0/3,M10.5.0/4"
    assert timezones.zone_rule("Australia/Sydney") == "AEST-10AEDT,M10.1.0,M4.1.0/3"
    assert timezones.zone_rule("Europe/Dublin") == "IST-1GMT0,M10.5.0,M3.5.0/1"


@pytest.mark.parametrize("name", ["Nope/Zone", "Europe/Nowhere", "", "../../etc/passwd", "/etc/passwd",
                                  "Europe//Paris", "zone.tab", "Europe/./Paris", "Europe", 42, None])
def test_zone_rule_unknown(name):
    with pytest.raises(ValueError, match="unknown time zone"):
        timezones.zone_rule(name)


def test_zone_rule_unknown_message():
    with pytest.raises(ValueError) as e:
        timezones.zone_rule("Mars/Olympus_Mons")
    assert str(e.value) == "unknown time zone 'Mars/Olympus_Mons'"


def test_zone_rule_falls_back_to_tzdata_package(tmp_path, monkeypatch):
    pkg = tmp_path / "tzdata"
    (pkg / "zoneinfo" / "Test").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "zoneinfo" / "Test" / "Only_In_Package").write_bytes(_tzif(b"2", b"<+0530>-5:30"))
    (pkg / "zoneinfo" / "Test" / "V1").write_bytes(_tzif(b"\0", b""))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tzdata", raising=False)
    monkeypatch.setattr(zoneinfo, "TZPATH", ())
    assert timezones.zone_rule("Test/Only_In_Package") == "<+0530>-5:30"
    with pytest.raises(ValueError, match="no usable POSIX rule"):
        timezones.zone_rule("Test/V1")
    with pytest.raises(ValueError, match="unknown time zone"):
        timezones.zone_rule("Europe/Paris")  # not in the fake package, TZPATH empty


# ---------------------------------------------------------------- parser and API details


def test_parse_fields():
    r = tz.parse("<-02>2<-01>,M3.5.0/-1,M10.5.0/0")
    assert (r.std_name, r.std_offset, r.dst_name, r.dst_offset) == ("-02", -7200, "-01", -3600)
    assert (r.start, r.start_time, r.end, r.end_time) == (("M", 3, 5, 0), -3600, ("M", 10, 5, 0), 0)
    r = tz.parse("EST5EDT")
    assert (r.start, r.start_time, r.end, r.end_time) == (("M", 3, 2, 0), 7200, ("M", 11, 1, 0), 7200)
    assert r.dst_offset == -4 * 3600
    r = tz.parse("AAA3BBB,J60/25:30:15,300/-167")
    assert (r.start, r.start_time, r.end, r.end_time) == (("J", 60), 91815, ("D", 300), -167 * 3600)
    r = tz.parse("<+09>-9")
    assert (r.dst_name, r.transitions(2026), r.utc_offset(0), r.is_dst(0)) == (None, None, 32400, False)
    assert repr(r) == "Rule('<+09>-9')"


def test_localtime_caches_last_string():
    tz.localtime(0, "<+0330>-3:30")
    first = tz._last[1]
    tz.localtime(10**9, "<+0330>-3:30")
    assert tz._last[1] is first
    tz.localtime(0, "UTC0")
    assert tz._last[1] is not first


def test_non_integer_time_is_refused():
    with pytest.raises(TypeError):
        tz.localtime(1.5, "UTC0")
    with pytest.raises(TypeError):
        tz.parse("CET-1CEST,M3.5.0,M10.5.0/3").utc_offset(1.5)


def test_tz_error_is_a_contract_error():
    from protocols.errors import ContractError

    with pytest.raises(ContractError) as e:
        tz.parse("EST5EDT,M3.2.0")
    assert isinstance(e.value, ValueError)
    assert e.value.path == "tz"
    assert str(e.value).startswith("tz: ")


def test_date_str_and_minutes():
    lt = tz.localtime(int(datetime(2026, 3, 29, 0, 59, tzinfo=UTC).timestamp()),
                      "EET-2EEST,M3.5.0/3,M10.5.0/4")
    assert tz.date_str(lt) == "2026-03-29"
    assert tz.minutes_of_day(lt) == 2 * 60 + 59
    lt = tz.localtime(int(datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()),
                      "EET-2EEST,M3.5.0/3,M10.5.0/4")
    assert tz.minutes_of_day(lt) == 4 * 60


# ---------------------------------------------------------------- properties

_TOKENS = ["EST", "EDT", "<+09>", "<-0330>", "<", ">", "+", "-", ":", "0", "1", "5", "9", "24", "25", "30",
           "59", "60", ",", ".", "/", "M", "J", "M3.2.0", "M10.5.0", "M4.1.6", "J60", "J365", "0", "365",
           "366", "/2", "/-1", "/25:30:15", "/167", "/168", "x", " ", "\n", "é", "\0", "<>"]


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join)))
def test_parse_raises_only_tz_error(text):
    try:
        r = tz.parse(text)
    except tz.TzError as e:
        assert e.path == "tz" and e.reason
        return
    # whatever parses must give sane answers
    for t in (-(10**10), -1, 0, 1782000000, 7258118399):
        off = r.utc_offset(t)
        assert off in (r.std_offset, r.dst_offset)
        lt = tz.localtime(t, r)
        assert tz.days_from_civil(lt[0], lt[1], lt[2]) * 86400 + lt[3] * 3600 + lt[4] * 60 + lt[5] == t + off


@settings(max_examples=500, deadline=None)
@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_civil_round_trip_matches_datetime(d):
    n = d.toordinal() - date(1970, 1, 1).toordinal()
    assert tz.days_from_civil(d.year, d.month, d.day) == n
    assert tz.civil_from_days(n) == (d.year, d.month, d.day)
    lt = tz.localtime(n * 86400 + 43200, "UTC0")
    assert lt[6] == d.isoweekday() and lt[7] == d.timetuple().tm_yday


_RULES = sorted({footer for _, footer, _ in ZONES} | {"EST5EDT,0/0,J365/25", "EST5EDT,J59,300/-1"})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_RULES),
       st.lists(st.integers(min_value=-(2 ** 33), max_value=2 ** 33), min_size=1, max_size=30))
def test_cached_span_gives_the_same_answers_as_a_fresh_rule(rule, ts):
    shared = tz.parse(rule)
    for t in ts:
        fresh = tz.parse(rule)
        assert shared.utc_offset(t) == fresh.utc_offset(t)
        assert shared.is_dst(t) == tz.parse(rule).is_dst(t)
        assert tz.localtime(t, shared) == tz.localtime(t, fresh)
