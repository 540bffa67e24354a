"""Caller prefixes packed into bytes (protocols.callerset): the board's shared form decides as CPython's
per-route form and as the plain rule (the longest prefix the caller starts with), and the controller
still reads `route.caller` as strings."""

import json
import random
import re

import pytest
import runner

from protocols import callerset, routing
from tests.protocols.mpy_caller_rule import by_rule

ROUTING_CASES = [c for f, c in runner.cases() if f == "routing.json"]
PORTS = ("gsm1", "gsm2", "*")


@pytest.fixture
def shared(monkeypatch):
    monkeypatch.setattr(callerset, "SHARED", True)


@pytest.mark.parametrize("case", ROUTING_CASES, ids=[c["name"] for c in ROUTING_CASES])
def test_routing_vectors_pass_with_the_boards_shared_spans(shared, case):
    runner.run_case(case)


def _table(rng, n_routes, prefix_pool):
    routes = []
    for i in range(n_routes):
        k = rng.choice((0, 1, 1, 2, 5))
        routes.append({"id": f"r{i}", "port": rng.choice(PORTS), "targets": ["a"],
                       **({"caller": rng.sample(prefix_pool, k)} if k else {})})
    return {"schema": 1, "gateway": "gw-pack-1", "version": 1, "tz": "UTC0",
            "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]}}, "routes": routes}


def test_shared_and_per_route_spans_decide_by_the_rule(monkeypatch):
    rng = random.Random(8)
    pool = ["+38", "+380", "+3805", "+38050", "380", "+7", "+1", "1", "12", "+380501234567890"[:16], "3805"]
    callers = ["", "+", "+380501112233", "+38", "380501", "+7495", "12", "1", "+38\n+380", "+3805\n",
               "x+38", "+380 50", "+38050€", "123456789012345678",
               "1b", "12b", "+3a", "+a38", "3805ff", "\xff", "+38+0", "3+8", "+\u0663"]
    for _ in range(40):
        doc = _table(rng, rng.randint(1, 30), pool)
        text = json.dumps(doc)
        monkeypatch.setattr(callerset, "SHARED", True)
        packed = routing.load(text)
        monkeypatch.setattr(callerset, "SHARED", False)
        own = routing.load(text)
        for port in ("gsm1", "gsm2"):
            for caller in callers:
                want = by_rule(doc["routes"], port, caller)
                for table in (packed, own):
                    assert routing.decide(table, port, caller, 0).route == want, (doc, port, caller)


def test_long_and_many_spans_take_chunks_of_their_own(shared):
    """A route with more prefix text than half a chunk gets its own; hundreds of routes fill several."""
    many = [f"+3805{i:05d}" for i in range(200)]
    routes = [{"id": "big", "port": "gsm1", "caller": many, "targets": ["a"]}]
    routes += [{"id": f"r{i}", "port": "gsm2", "caller": [f"+3806{i:05d}"], "targets": ["a"]} for i in range(300)]
    doc = {"schema": 1, "gateway": "gw-pack-1", "version": 1, "tz": "UTC0",
           "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]}}, "routes": routes}
    table = routing.load(json.dumps(doc))
    pieces = {id(r.callers) for r in table.routes}
    assert len(pieces) == len(table.caller_chunks) and 4 < len(pieces) < 10  # 300 routes share a few pieces
    assert len(table.routes[0].callers) == 1 + 6 * 200 > callerset.CHUNK  # the long span, a piece of its own
    assert all(len(c) <= callerset.CHUNK for c in table.caller_chunks[1:])
    assert routing.decide(table, "gsm1", "+3805001991", 0).route == "big"
    assert routing.decide(table, "gsm1", "+380509000000", 0).route is None
    assert routing.decide(table, "gsm2", "+38060029912", 0).route == "r299"
    assert routing.decide(table, "gsm2", "+38060030000", 0).route is None


def test_the_controller_reads_routes_by_name():
    doc = {"schema": 1, "gateway": "gw-pack-1", "version": 1, "tz": "UTC0",
           "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]}},
           "routes": [{"id": "day", "port": "gsm1", "caller": ["+3805", "+38067"], "targets": ["a"],
                       "from": 1700000000, "hours": [{"days": "12345", "start": "08:00", "end": "20:00"}],
                       "strategy": "round_robin", "after_hours": {"action": "next"}},
                      {"id": "any", "port": "*", "targets": ["a"], "fallback": {"action": "callback"}}]}
    day, any_ = routing.load(json.dumps(doc)).routes
    assert (day.caller, day.start, day.until, day.hours, day.strategy, day.after_hours, day.closed, day.menu) == (
        ("+3805", "+38067"), 1700000000, None, ((62, 480, 1200),), "round_robin", ("next", None), None, None)
    assert (any_.caller, any_.start, any_.fallback, any_.hours) == ((), None, ("callback", None), None)
    again = routing.load(json.dumps(doc)).routes
    assert again == [day, any_] and len({*again, day, any_}) == 2  # routes compare and hash by content


@pytest.mark.micropython
def test_the_board_decides_by_the_rule_with_packed_prefixes():
    from emulator import micropython

    result = micropython.run("tests/protocols/mpy_caller_rule.py", heap="4M")
    assert result.returncode == 0, result.stdout + result.stderr
    figures = dict(re.findall(r"(\w+)=(\d+)", result.stdout.splitlines()[-1]))
    assert int(figures["checked"]) == 40 * 2 * 23 and figures["mismatches"] == "0", result.stdout[-2000:]
    assert int(figures["pieces"]) > 1  # the spans of the larger tables lie in several shared pieces
