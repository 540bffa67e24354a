"""Fixtures of the board tests: the emulated firmware build (made once per session) and blank emulated boards."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.board import EmulatedRig
from tests.board.flashing import PROFILE, citygate


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fw") / "build"
    r = citygate("firmware", "build", "--profile", "emulated", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture
def blank_board(tmp_path):
    rigs = []

    def make(profile: str = PROFILE, **kw) -> EmulatedRig:
        rig = EmulatedRig("blank", "", "", profile=profile, workdir=tmp_path / f"board{len(rigs)}", blank=True, **kw)
        rigs.append(rig)
        rig.power_on()
        rig.wait_console("boot: no main.py on the flash", 30)
        return rig

    yield make
    for rig in rigs:
        rig.close()
