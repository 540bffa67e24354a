"""A technician's path on the emulated board, through the real CLI as subprocesses over the board's console pty:
`citygate firmware build`, `citygate flash` from a bundle onto a blank board, `citygate check`, and the board
online at a controller with the table from the bundle; only changed files copied; each field mistake refused
with its exit code before anything is written."""

from __future__ import annotations

import json
import os
import select as io_select
import shutil
import threading

import pytest
import serial
from sqlalchemy import select

from controller import bundles, reference
from controller.auth import create_token, create_user
from controller.brokers import Mosquitto, free_port
from controller.compiler import compile_all
from controller.models import Gateway
from controller.service import ControllerService
from controller.settings import Settings
from emulator.board import EmulatedRig
from tests.board.flashing import GW, KYIV_2016, PROFILE, citygate, flash, flashed, offline_bundle
from tests.conditions import until

pytestmark = [pytest.mark.slow, pytest.mark.micropython]

def until_or_console(rig: EmulatedRig, predicate, what: str, timeout: float = 60):
    try:
        return until(predicate, timeout, what)
    except AssertionError as e:
        raise AssertionError(f"{e}; the board's console:\n" + "\n".join(rig.console().splitlines()[-50:])) from None


def test_blank_board_flashed_from_a_bundle_checks_and_comes_online_with_the_bundles_table(tmp_path, build,
                                                                                           blank_board):
    with Mosquitto() as mq:
        db = f"sqlite:///{tmp_path / 'c.db'}"
        service = ControllerService(Settings(database_url=db, broker=mq.url, listen_port=free_port())).start()
        try:
            with service.db.session() as s:
                reference.seed(s)
                compile_all(s)
            bundle = tmp_path / "gw.bundle"
            r = citygate("bundle", "export", "--gateway", GW, "--out", str(bundle), "--broker", mq.url,
                         env={"CITYGATE_DATABASE_URL": db, "CITYGATE_BROKER": mq.url})
            assert r.returncode == 0, r.stderr
            version = json.loads(bundle.read_text())["table_version"]
            rig = blank_board()
            rig.network.set_time(KYIV_2016)
            done = flashed(rig.console_path, bundle, build)
            assert done["gateway"] == GW and done["table_version"] == version and done["copied"]
            assert done["verified"] == done["files"] == len(done["copied"])
            assert done["banner"].endswith(f"gateway {GW} up: profile {PROFILE}, ports gsm1,gsm2,gsm3,gsm4, "
                                           "fw ready") or "fw ready" in done["banner"]
            # the table came with the flash: loaded from the board's own flash before the link connected
            log = rig.console().splitlines()
            loaded = next(i for i, ln in enumerate(log) if f"table: v{version} loaded from flash" in ln)
            assert loaded < next(i for i, ln in enumerate(log) if "link: connected" in ln)

            def online():
                with service.db.session() as s:
                    g = s.get(Gateway, GW)
                    ports = (g.state or {}).get("ports") or {}
                    return g.online and g.applied_version == version and ports and all(
                        p.get("ready") for p in ports.values())
            until_or_console(rig, online, f"{GW} online at the controller with table v{version}, its modems ready")
            rig.wait_console(r"clock: synced from gsm", 30)  # what `check --wait` waits for on a real board
            r = citygate("check", "--port", rig.console_path, "--json")
            assert r.stdout.startswith("{"), r.stderr + "\n".join(rig.console().splitlines()[-40:])
            result = json.loads(r.stdout)
            assert r.returncode == 0 and result["ok"], r.stdout + r.stderr
            rows = {name: (ok, detail) for name, ok, detail in result["checks"]}
            assert rows["table"] == (True, f"v{version}") and rows["profile"] == (True, PROFILE)
            assert rows["firmware"][1].endswith("build " + done["build_id"]) and rows["broker"][0]
            assert {f"gsm{i} {what}" for i in range(1, 5) for what in ("modem", "SIM", "signal")} <= set(rows)
            assert "fw ready" in result["banner"], "check restarted the firmware"
            mark = rig.console_mark()
            until_or_console(rig, online, f"{GW} back online after the check")
            with service.db.session() as s:
                assert [g.applied_version for g in s.scalars(select(Gateway).where(Gateway.id == GW))] == [version]
            rig.wait_console(r"clock: synced from gsm", 30, after=mark)
            r = citygate("check", "--port", rig.console_path)  # the table a technician reads
            assert r.returncode == 0 and "all checks pass" in r.stdout and "FAIL" not in r.stdout, r.stdout
            # --gateway: the bundle fetched from the controller with a technician's token (a key rotation)
            with service.db.session() as s:
                token = create_token(s, create_user(s, "field-tech", "technician"), "laptop")
            r = citygate("flash", "--port", rig.console_path, "--gateway", GW, "--build", str(build), "--json",
                         env={"CITYGATE_API": service.url, "CITYGATE_TOKEN": token})
            assert r.returncode == 0, r.stderr + "\n".join(rig.console().splitlines()[-40:])
            again = json.loads(r.stdout)
            assert set(again["copied"]) == {"config.json", "table.json", "fw.json"}, "new key: code unchanged"
            assert again["table_version"] == version and "fw ready" in again["banner"]
            r = citygate("check", "--port", rig.console_path, "--wait", "60", "--json")  # right after a flash
            assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout + r.stderr
            r = citygate("flash", "--port", rig.console_path, "--gateway", GW, "--build", str(build),
                         env={"CITYGATE_API": service.url, "CITYGATE_TOKEN": "not-a-token"})
            assert r.returncode == 2 and "the controller refused the bundle of gw-toretsk-1 (401)" in r.stderr
        finally:
            service.stop()


def test_a_second_flash_copies_nothing_and_a_changed_file_alone(tmp_path, build, blank_board):
    rig = blank_board()
    bundle, _ = offline_bundle(tmp_path)
    first = flashed(rig.console_path, bundle, build)
    assert len(first["copied"]) == first["files"] and "main.py" in first["copied"]
    assert flashed(rig.console_path, bundle, build)["copied"] == []
    changed = tmp_path / "build2"
    shutil.copytree(build, changed)
    main = changed / "fs" / "main.py"
    main.write_bytes(main.read_bytes() + b"# a technician's local change\n")
    manifest = json.loads((changed / "manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["path"] == "main.py")
    entry["sha256"], entry["size"] = bundles.hashlib.sha256(main.read_bytes()).hexdigest(), main.stat().st_size
    (changed / "manifest.json").write_text(json.dumps(manifest))
    third = flashed(rig.console_path, bundle, changed)
    assert third["copied"] == ["main.py", "fw.json"], "the changed file, and the install record written last"
    assert "fw ready" in third["banner"]


def test_field_mistakes_are_refused_with_their_exit_codes(tmp_path, build, blank_board):
    rig = blank_board()
    port = rig.console_path
    bundle, _ = offline_bundle(tmp_path)
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(bundle.read_bytes()[:300])
    r = flash(port, cut, build)
    assert r.returncode == 2 and "corrupted or foreign bundle" in r.stderr, r.stderr
    r = flash("/dev/pts/98765", bundle, build)
    assert r.returncode == 3 and "no such port: /dev/pts/98765" in r.stderr, r.stderr
    with serial.Serial(port, 115200, exclusive=True):
        r = flash(port, bundle, build)
    assert r.returncode == 3 and "port busy" in r.stderr, r.stderr
    other_profile, _ = offline_bundle(tmp_path, profile="esp32-2gsm")
    r = flash(port, other_profile, build)
    assert r.returncode == 5 and f"board profile {PROFILE} differs from the bundle's esp32-2gsm" in r.stderr
    r = flash(port, bundle, build, "--romfs")
    assert r.returncode == 5 and "no ROMFS partition" in r.stderr, r.stderr
    old = tmp_path / "old-mpy"
    shutil.copytree(build, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["mpy"]["sub_version"] = 2
    (old / "manifest.json").write_text(json.dumps(manifest))
    r = flash(port, bundle, old)
    assert r.returncode == 5 and "loads bytecode mpy 6.3; the build is mpy 6.2" in r.stderr, r.stderr
    assert rig.console().count("fw ready") == 0, "nothing was flashed by any refused attempt"
    flashed(port, bundle, build)
    mariupol, _ = offline_bundle(tmp_path, gateway="gw-mariupol-1")
    r = flash(port, mariupol, build)
    assert r.returncode == 5 and f"bundle for another gateway: this board is {GW}" in r.stderr, r.stderr
    assert "--reassign" in r.stderr
    r = flash(port, mariupol, build, "--reassign", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["gateway"] == "gw-mariupol-1", r.stderr
    assert "board reassigned from gw-toretsk-1 to gw-mariupol-1" in r.stderr


def test_a_board_whose_flash_is_too_small_is_refused_before_writing(tmp_path, build, blank_board):
    rig = blank_board(flash_blocks=24)
    bundle, _ = offline_bundle(tmp_path)
    r = flash(rig.console_path, bundle, build)
    assert r.returncode == 6 and "board flash full" in r.stderr, r.stderr
    r = citygate("check", "--port", rig.console_path, "--json")
    assert r.returncode == 1 and "no citygate firmware on this board" in r.stdout, r.stdout


def test_a_port_that_answers_garbage_is_not_a_micropython_board(tmp_path, build):
    master, slave = os.openpty()
    stop = threading.Event()

    def babble():
        while not stop.wait(0.05):
            try:
                os.write(master, b"\x00\xffAT OK?? garbage\r\n")
                if io_select.select([master], [], [], 0)[0]:
                    os.read(master, 4096)  # what the flash tool sends: answered with more garbage
            except OSError:
                return

    t = threading.Thread(target=babble, daemon=True)
    t.start()
    try:
        bundle, _ = offline_bundle(tmp_path)
        r = flash(os.ttyname(slave), bundle, build)
        assert r.returncode == 4 and "does not answer as a MicroPython board" in r.stderr, r.stderr
    finally:
        stop.set()
        t.join(5)
        os.close(slave)
        os.close(master)
