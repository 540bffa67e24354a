"""Every contract vector on CPython, then the whole set on the real MicroPython."""

import re

import pytest
import runner

from emulator import micropython

CASES = runner.cases()


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[f"{f[:-5]}::{c['name']}" for f, c in CASES])
def test_vector_on_cpython(case):
    runner.run_case(case)


@pytest.mark.micropython
def test_same_vectors_pass_on_micropython():
    result = micropython.run(runner.HERE + "/runner.py", extra_path=[runner.HERE], timeout=600)
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert not failures, "\n".join(failures)
    summary = re.search(r"vectors: (\d+) passed, (\d+) failed", result.stdout)
    assert summary, f"runner did not finish on MicroPython:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert int(summary.group(1)) == len(CASES), "MicroPython ran a different number of vectors than CPython"
    assert summary.group(2) == "0"
    assert result.returncode == 0
