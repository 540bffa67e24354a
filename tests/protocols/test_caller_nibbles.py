"""Caller prefixes packed two digits a byte (protocols.callerset): the most prefix text a 32 KiB table holds
(65 routes of 40 prefixes, hil_tests.tables.many_callers_table) kept 33 KB on the unix port and did not
fit esp32-2gsm. Each prefix now takes half its characters and one frame byte; a shared piece that finds no
room on a heap cut into holes gives way to one just the size of the span."""

import json
import re
import subprocess
import sys

import pytest

from emulator import micropython
from hil_tests.tables import many_callers_table
from protocols import callerset, routing
from tests.protocols.mpy_caller_rule import by_rule


@pytest.fixture
def shared(monkeypatch):
    monkeypatch.setattr(callerset, "SHARED", True)


def _doc(routes):
    return {"schema": 1, "gateway": "gw-pack-1", "version": 1, "tz": "UTC0",
            "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]}}, "routes": routes}


def test_a_prefix_takes_half_its_characters_and_a_frame_byte(shared):
    body = many_callers_table()
    table = routing.load(body)
    assert len(table.routes) == 65 and all(len(r.caller) == 40 for r in table.routes)
    for r in table.routes:
        assert (r.span >> 10) - (r.span & 1023) == 1 + 40 * (4 + 1)  # "+38iiikk": 4 bytes and its frame
    assert sum(len(c) for c in table.caller_chunks) < 14_000  # 23,465 B as "\n"-framed text
    doc = json.loads(body)
    for caller in ("+3800000", "+380003912", "+3806439", "+38064400", "+38", "3800000", "+380010", ""):
        for port in ("gsm1", "gsm2"):
            assert routing.decide(table, port, caller, 0).route == by_rule(doc["routes"], port, caller), caller


def test_prefixes_read_back_as_the_strings_the_table_gave(shared):
    prefixes = ["+3", "+38", "1", "12", "123", "+380501234567890", "999999999999999", "0", "+0"]
    table = routing.load(json.dumps(_doc([{"id": "r", "port": "*", "caller": prefixes, "targets": ["a"]}])))
    assert table.routes[0].caller == tuple(prefixes)
    for p in prefixes:
        assert routing.decide(table, "gsm1", p + "5", 0).route == "r"
    for caller in ("2", "+4", "+", "", "x1", "+x3", "b", "1b"[1:], "\xff"):
        assert routing.decide(table, "gsm1", caller, 0).route is None, caller


def test_a_piece_that_finds_no_room_gives_way_to_one_the_size_of_the_span(shared, monkeypatch):
    """A board's heap that has run a while has no free piece of CHUNK bytes: the span still loads."""
    real = bytearray
    asked = []

    def tight(n=0, *rest):
        if type(n) is int:
            asked.append(n)
            if n > 300:
                raise MemoryError("no free piece of %d bytes" % n)
        return real(n, *rest)

    monkeypatch.setattr(callerset, "bytearray", tight, raising=False)
    routes = [{"id": f"r{i}", "port": "gsm1", "targets": ["a"], "caller": [f"+38{i:03d}{k:02d}" for k in range(40)]}
              for i in range(12)]
    table = routing.load(json.dumps(_doc(routes)))
    assert max(asked) >= callerset.CHUNK  # the shared pieces were tried first
    assert all(len(c) <= 300 for c in table.caller_chunks[1:]) and len(table.caller_chunks) > 4
    for i in range(12):
        assert routing.decide(table, "gsm1", f"+38{i:03d}391234", 0).route == f"r{i}"
        assert table.routes[i].caller == tuple(routes[i]["caller"])


@pytest.mark.micropython
def test_the_board_keeps_the_caller_heavy_table_in_far_less_heap(tmp_path):
    """On the unix port (objects twice an ESP32's) 65 routes of 40 prefixes kept ~33 KB; now ~19 KB. The
    calls take the routes CPython's form gives them."""
    path = tmp_path / "callers.json"
    path.write_bytes(many_callers_table())
    board = micropython.run("tests/protocols/mpy_caller_heap.py", str(path), heap="220K")
    assert board.returncode == 0, board.stdout + board.stderr
    host = subprocess.run([sys.executable, "tests/protocols/mpy_caller_heap.py", str(path)], capture_output=True,
                          text=True, check=True, env={"PYTHONPATH": str(micropython.REPO)}, cwd=micropython.REPO)
    kept = int(re.search(r"kept=(\d+)", board.stdout).group(1))
    assert kept < 24_000, board.stdout
    routes = re.search(r"routes=(\S+)", board.stdout).group(1)
    assert routes == re.search(r"routes=(\S+)", host.stdout).group(1)
    assert routes.split(",")[:4] == ["r0", "r0", "r64", "None"], routes
