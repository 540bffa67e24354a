"""Rig files: the shipped ones load; a bad one is refused naming the file, the table and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hil_tests.rig import base, config

BENCH = config.RIGS / "bench-example.toml"


def test_the_shipped_rig_files_load():
    emu = config.load(config.DEFAULT)
    assert (emu.kind, emu.board.id, emu.board.profile, emu.broker) == \
        ("emulated", "gw-hil-1", "esp32-wrover-4gsm", "private")
    assert emu.features == base.FEATURES
    bench = config.load(BENCH)
    assert bench.kind == "bench" and bench.features == {"gsm"}
    assert (bench.power.kind, bench.power.host, bench.power.unit, bench.power.coil, bench.power.invert) == \
        ("modbus-tcp", "10.0.0.50", 1, 0, False)
    assert bench.console.url == "/dev/ttyUSB0" and [c.number for c in bench.centres][0] == "+380629000001"
    assert bench.board.numbers["gsm1"] == "+380671110001"


def test_every_field_of_the_bench_example_is_commented():
    """The example documents the bench: each key line carries a comment (inline or on the line above)."""
    lines = BENCH.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_0-9]+ = ", line) and "#" not in line:
            assert lines[i - 1].lstrip().startswith("#") or lines[i - 1].startswith("[["), f"line {i + 1}: {line}"


def _bad(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rig.toml"
    path.write_text(text)
    with pytest.raises(config.RigConfigError) as e:
        config.load(path)
    assert str(path) in str(e.value)
    return str(e.value)


EMU = 'kind = "emulated"\n[board]\nid = "gw-1"\nkey = "%s"\nprofile = "esp32-2gsm"\n' % ("ab" * 32)


@pytest.mark.parametrize("text,says", [
    (EMU + "colour = 3\n", "[board] colour: unknown key"),
    (EMU.replace('"gw-1"', "7"), "[board] id: must be str, not int"),
    (EMU.replace("ab" * 32, "ab"), "[board] key: must be 64 hex digits"),
    (EMU.replace("esp32-2gsm", "esp8266"), "[board] profile: unknown board profile (known: esp32-2gsm"),
    (EMU.replace('id = "gw-1"\n', ""), "[board] id: missing"),
    ('kind = "emulated"\n', "[board]: must be a table"),
    ('kind = "cloud"\n', "top level kind: must be one of emulated, bench"),
    ('features = ["teleport"]\n' + EMU, "top level features: unknown feature 'teleport'"),
    (EMU + '[broker]\nurl = "http://x"\n', "[broker] url: must be 'private' or mqtt://host:port"),
    (EMU + "[emulated]\nflash_blocks = 3\n", "[emulated] flash_blocks: out of range"),
    ("kind = \n", "not TOML"),
])
def test_a_bad_rig_file_names_its_bad_key(tmp_path, text, says):
    assert says in _bad(tmp_path, text)


def test_a_bad_bench_part_names_its_key(tmp_path):
    text = BENCH.read_text()
    assert "[power] coil: out of range" in _bad(tmp_path, text.replace("coil = 0 ", "coil = 70000 "))
    assert "[power] kind: must be one of modbus-tcp, modbus-rtu" in \
        _bad(tmp_path, text.replace('kind = "modbus-tcp"', 'kind = "gpio"'))
    assert "[callers[1]] number: must be +digits or digits" in \
        _bad(tmp_path, text.replace('number = "+380511230002"', 'number = "caller two"'))
    assert "[console] url: missing" in _bad(tmp_path, text.replace('url = "/dev/ttyUSB0"', "# no url"))
    assert "a bench rig cannot have power_cut_injection" in \
        _bad(tmp_path, text.replace('features = ["gsm"]', 'features = ["gsm", "power_cut_injection"]'))


def test_the_console_expect_failure_quotes_the_last_lines_and_the_log(tmp_path):
    class Lines(base.Console):
        def __init__(self):
            self.log_path = tmp_path / "console.log"
            self.written = False

        def lines(self):
            return [f"line {i}" for i in range(100)]

        def flush_log(self):
            self.log_path.write_text("\n".join(self.lines()))

    console = Lines()
    assert console.expect(r"line 4\d", timeout=1).group(0) == "line 40"
    with pytest.raises(TimeoutError) as e:
        console.expect("link: connected", timeout=0.2)
    text = str(e.value)
    assert "'link: connected'" in text and str(console.log_path) in text
    assert "line 99" in text and "line 70" in text and "line 69" not in text
    assert console.log_path.read_text().endswith("line 99")
