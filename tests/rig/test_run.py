"""`python -m hil_tests.run` (what `citygate hil run` runs): pytest on a rig, JUnit XML, an HTML summary."""

from __future__ import annotations

import subprocess
import sys

from hil_tests import run
from hil_tests.rig import config

SUITE = '''
import pytest

def test_fine(rig_config):
    pass

@pytest.mark.needs("clock_control")
def test_needs_the_clock(rig_config):
    pass

def test_broken(rig_config):
    assert 1 + 1 == 3, "arithmetic <broke>"


@pytest.mark.xfail(reason="known to fail")
def test_known(rig_config):
    assert False
'''


def test_a_run_writes_junit_and_a_summary_naming_each_outcome(tmp_path):
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_scenarios.py").write_text(SUITE)
    rig = tmp_path / "poor.toml"
    rig.write_text(config.DEFAULT.read_text().replace('name = "emulated"', 'name = "poor"')
                   .replace('features = ["gsm", "fxo", "power_cut_injection", "clock_control", "flash_stats", '
                            '"modem_faults", "broker_control", "prompt_truth"]', 'features = ["gsm"]'))
    junit = tmp_path / "out" / "hil.xml"
    out = subprocess.run([sys.executable, "-m", "hil_tests.run", "--rig", str(rig), "--junit", str(junit),
                          "--suite", str(tmp_path / "suite")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr  # pytest's: a test failed
    cases = {c["name"].split("::")[-1]: c for c in run.results(junit)}
    assert {n: c["outcome"] for n, c in cases.items()} == \
        {"test_fine": "passed", "test_needs_the_clock": "skipped", "test_broken": "failed", "test_known": "xfailed"}
    assert "rig poor lacks feature clock_control" in cases["test_needs_the_clock"]["message"]
    page = (tmp_path / "out" / "hil.html").read_text()
    assert "1 passed, 1 failed, 1 skipped, 1 xfailed" in page and "HIL suite on rig poor (emulated)" in page
    assert "PytestAssertRewriteWarning" not in out.stdout
    assert "arithmetic &lt;broke&gt;" in page and "<broke>" not in page
    assert f"summary {tmp_path / 'out' / 'hil.html'}" in out.stdout


def test_a_bad_rig_file_is_refused_before_pytest_runs(tmp_path):
    rig = tmp_path / "bad.toml"
    rig.write_text(config.DEFAULT.read_text().replace('kind = "emulated"', 'kind = "cloud"'))
    out = subprocess.run([sys.executable, "-m", "hil_tests.run", "--rig", str(rig)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 4 and "top level kind: must be one of emulated, bench" in out.stderr, out.stderr


def test_citygate_hil_run_passes_its_options_and_pytest_arguments(tmp_path):
    from pathlib import Path

    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_scenarios.py").write_text(SUITE)
    citygate = Path(sys.executable).with_name("citygate")
    junit = tmp_path / "j.xml"
    out = subprocess.run([str(citygate), "hil", "run", "--rig", str(config.DEFAULT), "--junit", str(junit),
                          "--suite", str(tmp_path / "suite"), "--", "-k", "not broken and not known"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(c["outcome"] for c in run.results(junit)) == ["passed", "passed"]
    assert "2 passed" in (tmp_path / "j.html").read_text()
