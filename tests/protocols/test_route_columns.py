"""Routes kept as columns in blocks (protocols.routeset): read back as the table says, decided by the rule
across blocks, duplicate ids named, the same on MicroPython as on CPython, and small on a board."""

import json
import os
import subprocess
import sys

import pytest

from protocols import routeset, routing
from protocols.table import TableError

sys.path.insert(0, os.path.dirname(__file__))
from mpy_caller_rule import by_rule  # noqa: E402
from mpy_route_columns import CALLERS, NOWS, doc  # noqa: E402

SCRIPT = "tests/protocols/mpy_route_columns.py"


def test_routes_over_several_blocks_read_back_as_the_table_says():
    d = doc(300)
    routes = routing.load(json.dumps(d)).routes
    assert len(routes) == 300 > 2 * routeset.BLOCK
    for r, want in zip(routes, d["routes"], strict=True):
        assert (r.id, r.caller, r.port, r.targets, r.start, r.until, r.strategy) == (
            want["id"], tuple(want.get("caller", ())), want["port"], tuple(want["targets"]), want.get("from"),
            want.get("until"), want.get("strategy", "sequential"))
    assert routes[-1].id == routes[299].id == "r299" and routes[-300].id == d["routes"][0]["id"]
    assert [r.id for r in routes[127:130]] == [r["id"] for r in d["routes"][127:130]]  # across a block's end
    with pytest.raises(IndexError):
        routes[300]


@pytest.mark.parametrize("port", ["gsm1", "gsm2"])
def test_decisions_across_blocks_follow_the_rule(port):
    d = doc(300)
    table = routing.load(json.dumps(d))
    for caller in CALLERS:
        for now in NOWS:
            want = by_rule(d["routes"], port, caller, now)
            assert routing.decide(table, port, caller, now).route == want, (caller, now)


def test_a_duplicate_id_in_a_later_block_names_the_first():
    d = doc(300)
    d["routes"][250]["id"] = d["routes"][7]["id"]  # a long id with "." "_" "-"
    with pytest.raises(TableError) as e:
        routing.load(json.dumps(d))
    assert (e.value.path, e.value.reason) == ("routes[250].id", "duplicates the id of routes[7]")
    d["routes"][250]["id"] = "r1"  # "r1" is routes[1]; "r10", "r100" start with it and are not it
    with pytest.raises(TableError) as e:
        routing.load(json.dumps(d))
    assert e.value.reason == "duplicates the id of routes[1]"


def test_an_id_that_only_starts_like_another_is_not_a_duplicate():
    d = doc(20)
    d["routes"] = d["routes"][:3] + [dict(d["routes"][1], id="r1" + s) for s in ("0", "0.", "-x", "_")]
    routes = routing.load(json.dumps(d)).routes
    assert [r.id for r in routes][3:] == ["r10", "r10.", "r1-x", "r1_"]


@pytest.mark.micropython
def test_the_board_reads_and_decides_the_columns_as_cpython_and_keeps_little_per_route():
    from emulator import micropython

    board = micropython.run(SCRIPT, heap="4M")
    assert board.returncode == 0, board.stdout + board.stderr
    here = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH="."))
    board_lines, here_lines = board.stdout.splitlines(), here.stdout.splitlines()
    assert len(board_lines) == len(here_lines) == 1 + 300 + 2 * len(CALLERS) * len(NOWS) + 1 + 1
    for b, h in zip(board_lines[:-1], here_lines[:-1], strict=True):
        assert json.loads(b) == json.loads(h)
    assert json.loads(board_lines[-2]) == ["routes[250].id", "duplicates the id of routes[7]"]
    per_route = int(board_lines[-1].split("=")[1])
    assert 0 < per_route <= 40, board_lines[-1]  # a Route tuple and its id str were ~137 B on this port
