"""A table with no room on a fragmented heap (gw.tables): restart with a note, then load again or answer
the note, on the real MicroPython binary and on CPython (tests/firmware/mpy/table_restart_checks.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from emulator import micropython

SCRIPT = micropython.REPO / "tests" / "firmware" / "mpy" / "table_restart_checks.py"
FIRMWARE = micropython.REPO / "firmware"
CASES = ("a_starved_stream_still_names_its_envelope", "room_on_the_fresh_heap", "no_room_twice_is_refused",
         "bad_table_and_no_room_for_the_old", "a_note_names_one_envelope", "no_room_to_stream_restarts_once",
         "no_room_to_stream_twice_is_refused")


def _passed(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith("PASS ")]


@pytest.mark.micropython
def test_on_micropython(tmp_path):
    r = micropython.run(SCRIPT, str(tmp_path), heap="1M", extra_path=(FIRMWARE,))
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
    assert _passed(r.stdout) == list(CASES)


def test_on_cpython(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(micropython.REPO), str(FIRMWARE))))
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
    assert _passed(r.stdout) == list(CASES)
