"""`citygate board emulate --blank --workdir W`: a board with MicroPython only, flashed with `citygate flash`, keeps
what was flashed in its workdir: run again on the same workdir, it boots the firmware without being flashed."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

import pytest

from tests.board.flashing import CITYGATE, flashed, offline_bundle

pytestmark = [pytest.mark.slow, pytest.mark.micropython]


def emulate(workdir) -> subprocess.Popen:
    return subprocess.Popen([CITYGATE, "board", "emulate", "--blank", "--profile", "esp32-2gsm", "--workdir",
                             str(workdir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, COLUMNS="200"), start_new_session=True)


def read_until(proc: subprocess.Popen, text: str, timeout: float = 60) -> str:
    """Its output up to the first line holding `text`, or an AssertionError with what came."""
    got, deadline = b"", time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while text.encode() not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} within {timeout} s; it printed:\n{got.decode(errors='replace')[-2000:]}"
        if select.select([fd], [], [], min(left, 0.5))[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"it ended before {text!r}:\n{got.decode(errors='replace')[-2000:]}"
            got += chunk
    return got.decode(errors="replace")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_blank_board_waits_at_its_repl_and_keeps_what_was_flashed(tmp_path, build):
    bundle, doc = offline_bundle(tmp_path, profile="esp32-2gsm")
    proc = emulate(tmp_path / "board")
    try:
        head = read_until(proc, "boot: no main.py on the flash")
        port = next(line.split()[1] for line in head.splitlines() if line.startswith("console: /dev/pts/"))
        done = flashed(port, bundle, build)
        assert done["gateway"] == doc["gateway"] and "fw ready" in done["banner"]
    finally:
        stop(proc)
    proc = emulate(tmp_path / "board")
    try:
        out = read_until(proc, "fw ready")
        assert f"table: v{doc['table_version']} loaded from flash" in out and "no main.py" not in out
    finally:
        stop(proc)
