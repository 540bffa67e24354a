"""A newcomer's first hour, as the README tells it, in a fresh directory: the demo, the block it prints
pasted into a second shell, then every line of the README's walk, each doing what its comment says,
and the demo started again on its data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

# what each README line must show, beyond exiting 0 (the comment beside it, made checkable)
EXPECT = {
    "citygate gateway list": ["gw-toretsk-1", "gw-mariupol-1"],
    "citygate route add": ["what this changes", "00:00-06:00, 22:00-24:00", "dial mariupol-reserve"],
    "citygate rollout impact": ["Toretsk 102 (gsm1) every day", "00:00-06:00, 22:00-24:00"],
    "citygate rollout start": ["done"],
    "citygate report calls": ["calls per city and hour (UTC)", "totals per city"],
    "citygate gateway add": ["bundle written to toretsk-2.json"],
}


def walk_lines() -> list[str]:
    """The README's walk: the shell block after 'Your first hour' that calls the CLI, continuations joined."""
    section = README.read_text().split("## Your first hour", 1)[1].split("\n## ", 1)[0]
    block = [b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if "citygate gateway list" in b][0]
    return [line.split("  #")[0].strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


class Demo:
    """`citygate demo --data ./demo-data` as the README starts it, its output read as it comes."""

    def __init__(self, cwd: Path, env: dict):
        self.out: list[str] = []
        self.proc = subprocess.Popen([str(BIN / "citygate"), "demo", "--data", "./demo-data", "--rate", "30"],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        threading.Thread(target=lambda: self.out.extend(self.proc.stdout), daemon=True).start()

    def wait_for(self, text: str, timeout: float = 150) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.out):
                return "".join(self.out)
            assert self.proc.poll() is None, "".join(self.out)
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(self.out))

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(60)
        return "".join(self.out)


def run(line: str, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_first_hour_as_the_readme_tells_it(tmp_path):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", COLUMNS="200")
    for var in [k for k in env if k.startswith("CITYGATE_")]:
        del env[var]
    demo = Demo(tmp_path, env)
    try:
        printed = demo.wait_for("Ctrl-C stops everything")
        assert "all 4 boards online" in printed, printed
        pasted = [line.strip() for line in printed.splitlines() if line.strip().startswith("export CITYGATE_")]
        assert len(pasted) >= 3, printed
        shell = "\n".join(pasted) + "\n"
        emulated = None
        for line in walk_lines():
            if line.startswith("citygate board emulate"):
                emulated = subprocess.Popen(["bash", "-c", shell + "exec " + line], cwd=tmp_path, env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                            start_new_session=True)
                continue
            done = run(shell + line, tmp_path, env)
            assert done.returncode == 0, (line, done.stdout, done.stderr)
            said = " ".join((done.stdout + done.stderr).split())
            for expected in next((v for k, v in EXPECT.items() if line.startswith(k)), []):
                assert expected in said, (line, expected, said)
        assert emulated is not None, "the walk starts a board of its own"
        deadline, state = time.monotonic() + 90, {}
        while time.monotonic() < deadline and not state.get("online") and emulated.poll() is None:
            time.sleep(1)
            shown = run(shell + "citygate gateway show gw-toretsk-2 --json", tmp_path, env)
            state = json.loads(shown.stdout) if shown.returncode == 0 else {}
        if emulated.poll() is None:
            os.killpg(emulated.pid, signal.SIGINT)
        out, _ = emulated.communicate(timeout=60)
        assert state.get("online"), f"the new board, emulated from its bundle, came online at the demo:\n{out}"
        assert emulated.returncode == 0 and (tmp_path / "board-toretsk" / "flash.img").exists(), out
    finally:
        printed = demo.stop()
    assert "demo stopped" in printed, printed
    again = Demo(tmp_path, env)
    try:
        printed = again.wait_for("Ctrl-C stops everything")
        assert "all 4 boards online" in printed, printed
        shown = run("\n".join(pasted[:1]) + "\ncitygate route list --city Toretsk --json", tmp_path, env)
        assert "police-night" in shown.stdout, "the route added before the restart is kept"
    finally:
        again.stop()
