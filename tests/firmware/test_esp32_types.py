"""The real-board layer (firmware/gw/hw_esp32.py: UARTs, bridge pins, watchdog) type-checked against
MicroPython's ESP32 stubs (micropython-esp32-stubs) with pyright (basedpyright, all from PyPI): the
emulated board never runs this file, so the stubs are what stands between it and the hardware."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
CHECKED = ["gw/hw_esp32.py", "gw/profiles.py", "gw/tls.py"]  # tls: ssl, binascii, machine.RTC


def pyright(tree: Path) -> subprocess.CompletedProcess:
    stubs = sysconfig.get_paths()["purelib"]  # micropython-esp32-stubs and micropython-stdlib-stubs live here
    (tree / "pyrightconfig.json").write_text(json.dumps({
        "typeshedPath": stubs, "stubPath": stubs, "pythonPlatform": "Linux", "include": CHECKED,
        "typeCheckingMode": "standard", "reportMissingModuleSource": "none"}))
    exe = Path(sys.executable).with_name("basedpyright")
    return subprocess.run([str(exe), "-p", str(tree / "pyrightconfig.json"), "--outputjson"], capture_output=True,
                          text=True, timeout=300, cwd=tree)


def errors(tree: Path) -> list[str]:
    out = pyright(tree)
    report = json.loads(out.stdout)
    return [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}" for d in report["generalDiagnostics"]
            if d["severity"] == "error"]


def copy(tmp_path: Path) -> Path:
    tree = tmp_path / "fw"
    shutil.copytree(FIRMWARE / "gw", tree / "gw")
    return tree


def test_the_esp32_hardware_layer_matches_micropythons_esp32_api(tmp_path):
    assert errors(copy(tmp_path)) == []


def test_the_check_finds_a_wrong_call_into_machine(tmp_path):
    """The check can fail: a wrong argument type and an unknown function of `machine` are reported."""
    tree = copy(tmp_path)
    path = tree / "gw" / "hw_esp32.py"
    text = path.read_text()
    assert "baudrate=115200" in text and "machine.reset()" in text
    path.write_text(text.replace("baudrate=115200", 'baudrate="fast"').replace("machine.reset()", "machine.rst()"))
    found = " ".join(errors(tree))
    assert "baudrate" in found and '"rst" is not a known attribute of module "machine"' in found, found
