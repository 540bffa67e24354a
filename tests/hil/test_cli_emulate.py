"""`citygate board emulate` runs a board from the command line and stops it on Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.brokers import Mosquitto
from hil_tests.peer import ControllerPeer

pytestmark = pytest.mark.slow


def test_board_emulate_comes_online_and_stops_on_ctrl_c(tmp_path):
    citygate = Path(sys.executable).with_name("citygate")
    with Mosquitto() as broker, ControllerPeer(broker.url, client_id="cli-controller") as peer:
        proc = subprocess.Popen([str(citygate), "board", "emulate", "--gateway", "gw-cli-1", "--key", "ab" * 32,
                                 "--broker", broker.url, "--workdir", str(tmp_path / "board")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, COLUMNS="200"), start_new_session=True)
        try:
            state = peer.wait_state("gw-cli-1", lambda s: s.get("online") and s.get("boot") == 1, timeout=40)
            assert state["profile"] == "esp32-2gsm"
            time.sleep(0.5)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "link: connected" in out and "stopping" in out
        assert (tmp_path / "board" / "flash.img").exists(), "the flash image stays in --workdir"
        assert peer.wait_state("gw-cli-1", lambda s: s.get("online") is False, timeout=60), "last will delivered"
