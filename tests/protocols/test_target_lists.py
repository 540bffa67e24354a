"""Routes' target lists packed as target indexes (protocols.targetlists): read back and dialled as the table
says (one byte an index and two, long lists, shared parts), the same on MicroPython as on CPython, and
small on a board: a table of routes each with its own list keeps no tuple per list."""

import json
import os
import subprocess
import sys

import pytest

from hil_tests.tables import distinct_routes_table
from protocols import routing, targetlists
from protocols.targetlists import TargetLists, at

sys.path.insert(0, os.path.dirname(__file__))
from mpy_target_lists import NOW, SIZES, doc  # noqa: E402

SCRIPT = "tests/protocols/mpy_target_lists.py"


def _dialled(d, i, busy, turn):
    """DESIGN §5 steps 4-5 written plainly for route i of doc d (menu routes dial option 1: t1)."""
    r = d["routes"][i]
    ids = r.get("targets", ["t1"])
    if r.get("strategy") == "round_robin":
        k = turn % len(ids)
        ids = ids[k:] + ids[:k]
    free = [t for t in ids if busy.get(t, 0) < d["targets"][t]["max_calls"]]
    return ("dial", free) if free else ("reject", [])


@pytest.mark.parametrize("n_targets,n_routes", SIZES, ids=["one-byte-indexes", "two-blocks-of-ids", "two-byte-indexes"])
def test_packed_lists_read_back_and_dial_as_the_table_says(n_targets, n_routes):
    d = doc(n_targets, n_routes)
    table = routing.load(json.dumps(d))
    assert len(table.routes.lists[0]) == -(-n_targets // targetlists.BLOCK)  # the ids' blocks
    assert any(len(r.get("targets", ())) > targetlists._RUN for r in d["routes"])  # some have their own piece
    busy = {"t0": 1, "t3": 0}
    for i, want in enumerate(d["routes"]):
        r = table.routes[i]
        assert r.targets == tuple(want.get("targets", ())) and type(r.targets) is tuple
        got = routing.decide(table, "gsm1", "+38%d" % i, NOW, busy=busy, turn=i, keys="1")
        assert (got.route, (got.action, got.targets)) == (want["id"], _dialled(d, i, busy, i)), i


def test_a_list_already_in_the_pieces_is_shared_not_packed_again():
    lists = TargetLists(["a", "b", "c", "d"])
    abc = lists.add(("a", "b", "c"))
    bc, c, cb = lists.add(("b", "c")), lists.add(("c",)), lists.add(("c", "b"))
    assert lists.add(("a", "b", "c")) == abc and lists.add(["b", "c"]) == bc
    kept = lists.finish()
    assert [bytes(p) for p in kept[1]] == [bytes([0, 1, 2, 2, 1])]
    assert [at(kept, v) for v in (abc, bc, c, cb, 0)] == [("a", "b", "c"), ("b", "c"), ("c",), ("c", "b"), ()]


def test_two_byte_indexes_match_only_at_a_whole_index():
    tids = ["t%d" % i for i in range(300)]
    lists = TargetLists(tids)
    first = lists.add(("t256", "t1"))  # bytes 00 01 01 00: "t257" (01 01) lies at an odd start
    t257 = lists.add(("t257",))
    t1 = lists.add(("t1",))
    kept = lists.finish()
    assert (at(kept, first), at(kept, t257), at(kept, t1)) == (("t256", "t1"), ("t257",), ("t1",))
    assert len(kept[1][0]) == 6  # t257 packed, t1 found at the second index


def test_pieces_stay_small_and_few_for_routes_each_with_their_own_list():
    table = routing.load(distinct_routes_table())
    pieces = table.routes.lists[1]
    entries = sum(len(r.targets) for r in table.routes)
    assert len(table.routes) == 529 and entries > 1000
    assert all(len(p) <= targetlists.PIECE for p in pieces)
    assert sum(len(p) for p in pieces) < entries * 4 // 5  # runs found inside others are shared


def test_long_lists_get_their_own_piece_and_an_equal_one_shares_it():
    lists = TargetLists(["a", "b"])
    long_ab = ["a", "b"] * 40
    v = lists.add(long_ab)
    assert lists.add(list(long_ab)) == v and lists.add(["b"] + long_ab) != v
    kept = lists.finish()
    assert at(kept, v) == tuple(long_ab) and len(kept[1]) == 2


@pytest.mark.micropython
def test_the_board_reads_and_dials_the_packed_lists_as_cpython_and_keeps_little_per_route():
    from emulator import micropython

    board = micropython.run(SCRIPT, heap="4M")
    assert board.returncode == 0, board.stdout + board.stderr
    here = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH="."))
    board_lines, here_lines = board.stdout.splitlines(), here.stdout.splitlines()
    assert len(board_lines) == len(here_lines) == 1 + sum(n for _, n in SIZES)
    for b, h in zip(board_lines[:-1], here_lines[:-1], strict=True):
        assert json.loads(b) == json.loads(h)
    per_route = int(board_lines[-1].split("=")[1])
    assert 0 < per_route <= 48, board_lines[-1]  # a tuple a list, shared through a dict: 75 B on this port
