"""The citygate_hil pytest plugin: --rig picks the rig file, `needs` skips what the rig cannot do, a bad
rig file stops the run naming its key. Each case runs pytest in a child process on a scratch test file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hil_tests.rig import config

SCENARIO = '''
import pytest

def test_plain(rig_config):
    assert rig_config.name == "{name}"

@pytest.mark.needs("clock_control")
def test_clock(rig_config):
    pass

@pytest.fixture(scope="module")
def cutting_board(rig_config):
    assert "power_cut_injection" in rig_config.features, "set up for a test its rig cannot run"


@pytest.mark.needs("gsm", "power_cut_injection")
def test_cut(rig_config, cutting_board):
    pass
'''


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_a_rig_without_a_feature_skips_the_scenarios_needing_it_and_says_why(tmp_path):
    rig = tmp_path / "poor.toml"
    rig.write_text(config.DEFAULT.read_text().replace('name = "emulated"', 'name = "poor"')
                   .replace('features = ["gsm", "fxo", "power_cut_injection", "clock_control", "flash_stats", '
                            '"modem_faults", "broker_control", "prompt_truth"]', 'features = ["gsm"]'))
    (tmp_path / "test_scenario.py").write_text(SCENARIO.format(name="poor"))
    out = _pytest(tmp_path, "--rig", str(rig), "test_scenario.py")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 2 skipped" in out.stdout
    assert "rig poor lacks feature clock_control" in out.stdout
    assert "rig poor lacks feature power_cut_injection" in out.stdout


def test_the_default_rig_is_the_emulated_one_with_every_feature(tmp_path):
    (tmp_path / "test_scenario.py").write_text(SCENARIO.format(name="emulated"))
    out = _pytest(tmp_path, "test_scenario.py")
    assert out.returncode == 0 and "3 passed" in out.stdout, out.stdout + out.stderr


def test_a_bad_rig_file_stops_the_run_naming_its_key(tmp_path):
    rig = tmp_path / "bad.toml"
    rig.write_text(config.DEFAULT.read_text().replace("boot_timeout_s = 40", "boot_timeout_s = -1"))
    (tmp_path / "test_scenario.py").write_text(SCENARIO.format(name="emulated"))
    out = _pytest(tmp_path, "--rig", str(rig), "test_scenario.py")
    assert out.returncode == 4, out.stdout + out.stderr  # a usage error
    assert f"{rig}: [board] boot_timeout_s: out of range" in out.stderr
