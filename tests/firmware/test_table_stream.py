"""gw.jstream (a JSON object scanned in pieces) and gw.bodyfile (a table loaded from flash a member at
a time) on the real MicroPython binary and on CPython: the same checks, the same answers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from emulator import micropython
from hil_tests.tables import big_table

SCRIPT = micropython.REPO / "tests" / "firmware" / "mpy" / "table_stream_checks.py"
FIRMWARE = micropython.REPO / "firmware"


@pytest.fixture(scope="module")
def body_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "body.json"
    path.write_bytes(big_table("gw-stream-1", deny=1000))  # 32 KiB, 1,000 deny prefixes: several chunks
    return path


@pytest.mark.micropython
def test_on_micropython(body_file, tmp_path):
    r = micropython.run(SCRIPT, str(body_file), str(tmp_path / "work.bin"), heap="1M", extra_path=(FIRMWARE,))
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr


def test_on_cpython(body_file, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(micropython.REPO), str(FIRMWARE))))
    r = subprocess.run([sys.executable, str(SCRIPT), str(body_file), str(tmp_path / "work.bin")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
