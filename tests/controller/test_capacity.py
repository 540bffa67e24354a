"""A centre's lines shared among the gateways that dial it: caps never add up to more than its lines, even when
there are fewer lines than gateways (then some gateways get none, and their calls go elsewhere)."""

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from controller import reference
from controller.capacity import Split, peak_concurrency, split
from controller.compiler import Region, compile_all, latest_table
from controller.db import Database
from controller.models import Centre, Gateway, ProbeSchedule, Record
from protocols import routing

NOW = 1469448000
AFTER_SWITCH_OVER = reference.SWITCH_OVER + 86400 + 12 * 3600  # Toretsk dials Mariupol's centre
GATEWAYS = sorted(reference.CITIES)  # kramatorsk, mariupol, sloviansk, toretsk


def test_split_gives_each_at_least_one_and_the_rest_by_weight():
    assert split(10, {"a": 0, "b": 0}) == {"a": 5, "b": 5}, "no history: equal shares"
    assert split(10, {"a": 6, "b": 2}) == {"a": 7, "b": 3}
    assert split(7, {"a": 1, "b": 1, "c": 1}) == {"a": 3, "b": 2, "c": 2}, "ties by id, sum = lines"
    assert split(4, {"a": 0, "b": 9, "c": 0, "d": 1}) == {"a": 1, "b": 1, "c": 1, "d": 1}, "as many lines as gateways"
    assert split(0, {"a": 3}) == {"a": 0}, "a centre with no lines takes no calls"
    assert split(5, {}) == {}


def test_fewer_lines_than_gateways_leaves_the_least_used_without_a_line():
    assert split(3, {"a": 0, "b": 0, "c": 0, "d": 0}) == {"a": 1, "b": 1, "c": 1, "d": 0}, "no history: smaller ids"
    assert split(3, {"a": 0, "b": 5, "c": 0, "d": 2}) == {"a": 1, "b": 1, "c": 0, "d": 1}, "a and c tie: a wins"
    assert split(1, {"a": 1, "b": 2, "c": 2}) == {"a": 0, "b": 1, "c": 0}
    assert split(2, {"a": -5, "b": 0, "c": 0}) == {"a": 1, "b": 1, "c": 0}, "a negative weight counts as 0"


@given(st.integers(min_value=-3, max_value=200),
       st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.integers(min_value=-10, max_value=10**18),
                       max_size=30))
def test_the_shares_never_add_up_to_more_than_the_lines(capacity, weights):
    shares = split(capacity, weights)
    assert set(shares) == set(weights) and all(isinstance(n, int) and n >= 0 for n in shares.values())
    assert sum(shares.values()) <= max(capacity, 0)
    if capacity <= 0 or not weights:
        assert not any(shares.values())
    elif capacity >= len(weights):
        assert sum(shares.values()) == capacity and min(shares.values()) >= 1, "every line given, one each at least"
    else:
        assert sorted(shares.values()) == [0] * (len(weights) - capacity) + [1] * capacity
        rank = {g: (-max(w, 0), g) for g, w in weights.items()}  # the heaviest first, ties by id
        assert max(rank[g] for g, n in shares.items() if n) < min(rank[g] for g, n in shares.items() if not n)


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=1, max_value=12),
       st.integers(min_value=0, max_value=50), st.integers(min_value=0, max_value=50))
def test_more_history_never_means_fewer_lines(capacity, gateways, w, more):
    weights = {f"gw{i:02d}": (i * 7) % 5 for i in range(gateways)}
    less, plus = dict(weights, gw00=w), dict(weights, gw00=w + more)
    assert split(capacity, plus)["gw00"] >= split(capacity, less)["gw00"]


def test_the_warning_names_the_centre_its_lines_the_gateways_and_who_got_no_line():
    sp = Split("mariupol-102", 3, split(3, dict.fromkeys(GATEWAYS, 0)))
    assert sp.no_line == ["gw-toretsk-1"]
    assert sp.warning.startswith("centre mariupol-102 has 3 lines but 4 gateways dial it: no line for gw-toretsk-1")
    assert Split("c", 4, split(4, dict.fromkeys(GATEWAYS, 0))).warning is None
    assert Split("c", 0, split(0, dict.fromkeys(GATEWAYS, 0))).warning is None, "no lines at all: a closed centre"


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.upgrade()
    with db.session() as s:
        reference.seed(s)
    return db


def _call(gw, seq, at, talk, target="mariupol-102"):
    return Record(gateway_id=gw, store_id="s", seq=seq, kind="call", at=at, route="police-102", outcome="answered",
                  target=target, ring_s=2, talk_s=talk, data={})


def _lines(s, code: str, n: int) -> None:
    s.scalars(select(Centre).where(Centre.code == code)).one().capacity = n
    s.flush()


def test_peak_concurrency_counts_overlapping_calls_only(db):
    with db.session() as s:
        s.add_all([_call("gw-mariupol-1", 1, NOW, 60), _call("gw-mariupol-1", 2, NOW + 10, 60),
                   _call("gw-mariupol-1", 3, NOW + 20, 60), _call("gw-mariupol-1", 4, NOW + 500, 60),
                   _call("gw-toretsk-1", 1, NOW, 8), _call("gw-toretsk-1", 2, NOW + 10, 8),  # back to back
                   _call("gw-toretsk-1", 3, NOW - 40 * 86400, 999)])  # older than 28 days
    with db.session() as s:
        peaks = peak_concurrency(s, ["gw-mariupol-1", "gw-toretsk-1"], now=NOW + 1000)
    assert peaks == {("gw-mariupol-1", "mariupol-102"): 3, ("gw-toretsk-1", "mariupol-102"): 1}


def test_four_gateways_never_get_more_than_the_centres_lines(db):
    with db.session() as s:
        _lines(s, "mariupol-102", 10)
        recent = int(time.time()) - 3600  # the last 28 days count
        s.add_all([_call("gw-mariupol-1", i, recent + i, 300) for i in range(1, 7)])  # Mariupol peaked at 6
        compiled = {c.gateway: json.loads(c.body) for c in compile_all(s, at=NOW)}
        split_now = Region(s).splits()["mariupol-102"]
    caps = {gw: doc["targets"]["mariupol-102"]["max_calls"] for gw, doc in compiled.items()}
    assert sum(caps.values()) == 10 and min(caps.values()) >= 1
    assert caps["gw-mariupol-1"] == max(caps.values()) == 7, caps
    assert split_now.shares == caps and split_now.warning is None


def test_four_gateways_on_three_lines_leave_one_without_a_line_and_its_calls_go_on(db):
    """The reference centre with three lines: Toretsk (last by id, no history) gets max_calls 0 for it, so its
    police calls go to the reserve centre; with the reserve's two lines also taken by the first two gateways,
    to the route's fallback (a call-back), exactly as when the target is at its cap."""
    with db.session() as s:
        _lines(s, "mariupol-102", 3)
        compiled = {c.gateway: c for c in compile_all(s, at=NOW)}
        docs = {gw: json.loads(c.body) for gw, c in compiled.items()}
    caps = {gw: doc["targets"]["mariupol-102"]["max_calls"] for gw, doc in docs.items()}
    assert caps == {"gw-kramatorsk-1": 1, "gw-mariupol-1": 1, "gw-sloviansk-1": 1, "gw-toretsk-1": 0}
    toretsk = routing.load(compiled["gw-toretsk-1"].body)  # 0 is a valid cap (DESIGN §4): the table loads
    d = routing.decide(toretsk, "gsm1", "+380624711111", AFTER_SWITCH_OVER)
    assert (d.action, d.targets, d.reason) == ("dial", ["mariupol-reserve"], "ok"), "the next target"
    kramatorsk = routing.load(compiled["gw-kramatorsk-1"].body)
    d = routing.decide(kramatorsk, "gsm1", "+380626111111", AFTER_SWITCH_OVER)
    assert d.targets == ["mariupol-102", "mariupol-reserve"], "gateways with a line dial as before"
    warning = ("centre mariupol-102 has 3 lines but 4 gateways dial it: no line for gw-toretsk-1 "
               "(their calls go to the route's next target or fallback)")
    for gw, c in compiled.items():
        assert f"{gw}: {warning}" in c.warnings, (gw, c.warnings)
    with db.session() as s:  # fewer reserve lines: Sloviansk and Toretsk get none there either
        _lines(s, "mariupol-reserve", 2)
        compiled = {c.gateway: c for c in compile_all(s, at=NOW + 60)}
    reserve = {gw: json.loads(c.body)["targets"]["mariupol-reserve"]["max_calls"] for gw, c in compiled.items()}
    assert reserve == {"gw-kramatorsk-1": 1, "gw-mariupol-1": 1, "gw-sloviansk-1": 0, "gw-toretsk-1": 0}
    d = routing.decide(routing.load(compiled["gw-toretsk-1"].body), "gsm1", "+380624711111", AFTER_SWITCH_OVER)
    assert (d.action, d.targets, d.reason) == ("callback", [], "all_busy"), "the fallback, as at its cap"
    d = routing.decide(routing.load(compiled["gw-sloviansk-1"].body), "gsm1", "+380627111111", AFTER_SWITCH_OVER)
    assert (d.action, d.targets) == ("dial", ["mariupol-102"])
    assert any("no line for gw-sloviansk-1, gw-toretsk-1" in w for w in compiled["gw-sloviansk-1"].warnings)


def test_the_busiest_gateways_keep_the_lines(db):
    recent = int(time.time()) - 3600
    with db.session() as s:
        _lines(s, "mariupol-102", 3)
        s.add_all([_call("gw-toretsk-1", i, recent + i, 300) for i in range(1, 3)])  # Toretsk peaked at 2
        s.add(_call("gw-mariupol-1", 1, recent, 300))  # Mariupol at 1; Kramatorsk, Sloviansk none: a tie
        compiled = compile_all(s, at=NOW)
        split_now = Region(s).splits()["mariupol-102"]
    caps = {c.gateway: json.loads(c.body)["targets"]["mariupol-102"]["max_calls"] for c in compiled}
    assert caps == {"gw-kramatorsk-1": 1, "gw-mariupol-1": 1, "gw-sloviansk-1": 0, "gw-toretsk-1": 1}
    assert split_now.no_line == ["gw-sloviansk-1"] and split_now.peaks["gw-toretsk-1"] == 2


def test_a_gateway_whose_share_changes_is_recompiled_with_the_one_compiled(db):
    """Compiling one gateway recompiles the others whose share of a centre changed, to 0 and back from 0, so
    the stored tables never give the centre's gateways more lines than it has."""
    def caps(s):
        return {gw: json.loads(latest_table(s, gw).body)["targets"]["mariupol-102"]["max_calls"] for gw in GATEWAYS}

    with db.session() as s:
        compile_all(s, at=NOW)
        assert sum(caps(s).values()) == 4
        _lines(s, "mariupol-102", 2)
        compile_all(s, [s.get(Gateway, "gw-mariupol-1")], at=NOW + 60)
        assert caps(s) == {"gw-kramatorsk-1": 1, "gw-mariupol-1": 1, "gw-sloviansk-1": 0, "gw-toretsk-1": 0}
        _lines(s, "mariupol-102", 4)
        compile_all(s, [s.get(Gateway, "gw-kramatorsk-1")], at=NOW + 120)
        assert caps(s) == dict.fromkeys(GATEWAYS, 1)


def test_a_gateway_without_a_line_does_not_probe_the_centre(db):
    with db.session() as s:
        _lines(s, "mariupol-102", 3)
        s.add(ProbeSchedule(centre_id=s.scalars(select(Centre.id).where(Centre.code == "mariupol-102")).one(),
                            every_s=3600))
        s.flush()
        docs = {c.gateway: json.loads(c.body) for c in compile_all(s, at=NOW)}
    probed = {gw: [p["target"] for p in doc.get("probes", [])] for gw, doc in docs.items()}
    assert probed == {"gw-kramatorsk-1": ["mariupol-102"], "gw-mariupol-1": ["mariupol-102"],
                      "gw-sloviansk-1": ["mariupol-102"], "gw-toretsk-1": []}
