"""`citygate board emulate` runs a board from the command line and stops it on Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from controller.brokers import Mosquitto
from hil_tests.peer import ControllerPeer
from tests.conditions import until

pytestmark = pytest.mark.slow


def test_board_emulate_comes_online_and_stops_on_ctrl_c(tmp_path):
    citygate = Path(sys.executable).with_name("citygate")
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="cli-controller") as peer:
        proc = subprocess.Popen([str(citygate), "board", "emulate", "--gateway", "gw-cli-1", "--key", "ab" * 32,
                                 "--broker", broker.url, "--workdir", str(tmp_path / "board")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, COLUMNS="200"), start_new_session=True)
        output = _Output(proc)
        try:
            state = peer.wait_state("gw-cli-1", lambda s: s.get("online") and s.get("boot") == 1, timeout=40)
            assert state["profile"] == "esp32-2gsm"
            output.wait_for("link: connected")  # the command echoes the board's console every 0.2 s
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            out = output.finish()
        assert proc.returncode == 0, out
        assert "link: connected" in out and "stopping" in out
        assert (tmp_path / "board" / "flash.img").exists(), "the flash image stays in --workdir"
        assert peer.wait_state("gw-cli-1", lambda s: s.get("online") is False, timeout=60), "last will delivered"


def test_board_emulate_from_its_bundle_signs_in_to_the_controllers_embedded_broker(tmp_path):
    """Registered, bundle written, emulated from the bundle: the broker admits it with the bundle's password."""
    from controller import reference
    from controller.api.routes.gateways import GatewayIn, bundle_config, register
    from controller.brokers import free_port
    from controller.models import Gateway
    from controller.service import ControllerService
    from controller.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", broker="embedded", listen_port=free_port(),
                        secret_key="emulate-test-" + "k" * 32, broker_password=None)
    service = ControllerService(settings).start()
    proc = None
    try:
        with service.db.session() as s:
            reference.seed(s)
            made = register(s, GatewayIn(id="gw-cli-2", city="Toretsk", services={"gsm1": "102"}, out_ports=["gsm2"]),
                            settings.secret_key, actor="tests")
            # the bundle holds no secret: the technician adds the ones registration handed out once
            config = {**bundle_config(s.get(Gateway, "gw-cli-2"), settings, service.bridge),
                      "key": made.key, "password": made.password}
        (tmp_path / "config.json").write_text(json.dumps(config))
        citygate = Path(sys.executable).with_name("citygate")
        proc = subprocess.Popen([str(citygate), "board", "emulate", "--bundle", str(tmp_path / "config.json"),
                                 "--workdir", str(tmp_path / "board")], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=dict(os.environ, COLUMNS="200"),
                                start_new_session=True)
        output = _Output(proc)
        until(lambda: _online(service, "gw-cli-2"), 40, "the board's state at the controller", every=0.3)
        output.wait_for("link: connected")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGINT)
            out = output.finish()
        service.stop()
    assert proc.returncode == 0 and "link: connected" in out, out


class _Output:
    """A command's merged output, read as it comes, so a test can wait for a line instead of sleeping."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 20) -> None:
        until(lambda: any(text in line for line in list(self.lines)), timeout, f"{text!r} in the output")

    def finish(self) -> str:
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        return "".join(self.lines)


def _online(service, gw_id) -> bool:
    from controller.models import Gateway

    with service.db.session() as s:
        return bool(s.get(Gateway, gw_id).online)


def _emulate(citygate: Path, cwd: Path, broker_url: str) -> subprocess.Popen:
    """The README's command, run from `cwd` with a relative --workdir."""
    return subprocess.Popen([str(citygate), "board", "emulate", "--gateway", "gw-cli-3", "--key", "ab" * 32,
                             "--broker", broker_url, "--workdir", "./board-toretsk"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, COLUMNS="200"), start_new_session=True)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def test_relative_workdir_and_a_kept_flash_follow_the_command_line(tmp_path):
    """`--workdir ./board-toretsk` runs (paths made absolute); started again on another broker, the kept
    flash takes the broker the command line names; a firmware that dies ends the command non-zero."""
    citygate = Path(sys.executable).with_name("citygate")
    with Mosquitto() as first, Mosquitto() as second:
        with ControllerPeer(first.url, client_id="cli-controller-1") as peer:
            proc = _emulate(citygate, tmp_path, first.url)
            try:
                assert peer.wait_state("gw-cli-3", lambda s: s.get("online") and s.get("boot") == 1, timeout=40)
            finally:
                out = _stop(proc)
            assert proc.returncode == 0, out
        assert (tmp_path / "board-toretsk" / "flash.img").exists()
        with ControllerPeer(second.url, client_id="cli-controller-2") as peer:
            proc = _emulate(citygate, tmp_path, second.url)
            try:
                assert peer.wait_state("gw-cli-3", lambda s: s.get("online") and s.get("boot") == 2, timeout=40), \
                    "the second start (kept flash) connects to the broker given now"
                board_json = str((tmp_path / "board-toretsk" / "board.json").resolve())
                pids = subprocess.run(["pgrep", "-f", board_json], capture_output=True, text=True).stdout.split()
                assert pids, "the board's MicroPython process"
                for pid in pids:  # the firmware stops without the rig powering it off: a crash
                    os.kill(int(pid), signal.SIGTERM)
                proc.wait(timeout=30)
            finally:
                out = _stop(proc)
        assert proc.returncode == 1, out
        assert "the firmware stopped" in out and "config: replaced by the provisioned one (broker)" in out, out
