"""A full 32 KiB table loads and decides inside the ESP32 heap budget (-X heapsize=220K)."""

import re

import pytest

from emulator import micropython
from hil_tests.tables import big_table
from protocols import routing


@pytest.mark.micropython
def test_32k_table_loads_and_decides_in_220k_heap(tmp_path):
    body = big_table()
    assert 32 * 1024 - 400 < len(body) <= 32 * 1024
    assert len(routing.load(body).deny) == 300
    path = tmp_path / "big.json"
    path.write_bytes(body)
    result = micropython.run("bench/mpy_decide.py", str(path), "500", heap="220K")
    assert result.returncode == 0, result.stdout + result.stderr
    figures = dict(re.findall(r"(\w+)=(-?\d+)", result.stdout))
    assert int(figures["decisions"]) == 500
    assert int(figures["routes"]) == len(routing.load(body).routes)
    assert int(figures["heap_after_load"]) > 16 * 1024, "less than 16 KB left for the rest of the firmware"


@pytest.mark.micropython
def test_a_table_one_byte_over_the_limit_is_refused_on_micropython(tmp_path):
    body = big_table()
    padded = body[:-1] + b"," + b'"pad":"' + b"x" * (32 * 1024 - len(body) - 8) + b'"}'
    assert len(padded) == 32 * 1024 + 1
    path = tmp_path / "over.json"
    path.write_bytes(padded)
    result = micropython.run("bench/mpy_decide.py", str(path), "1", heap="220K")
    assert result.returncode != 0 and "32769 bytes, more than the 32768 allowed" in result.stdout + result.stderr
