"""`citygate board emulate` runs a board from the command line and stops it on Ctrl-C."""

import json
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
            register(s, GatewayIn(id="gw-cli-2", city="Toretsk", services={"gsm1": "102"}, out_ports=["gsm2"]),
                     settings.secret_key)
            config = bundle_config(s.get(Gateway, "gw-cli-2"), settings, service.bridge)
        (tmp_path / "config.json").write_text(json.dumps(config))
        citygate = Path(sys.executable).with_name("citygate")
        proc = subprocess.Popen([str(citygate), "board", "emulate", "--bundle", str(tmp_path / "config.json"),
                                 "--workdir", str(tmp_path / "board")], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=dict(os.environ, COLUMNS="200"),
                                start_new_session=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not _online(service, "gw-cli-2"):
            time.sleep(0.3)
        assert _online(service, "gw-cli-2"), "the board's state reached the controller"
        time.sleep(1)  # the command echoes the board's console every 0.2 s
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        service.stop()
    assert proc.returncode == 0 and "link: connected" in out, out


def _online(service, gw_id) -> bool:
    from controller.models import Gateway

    with service.db.session() as s:
        return bool(s.get(Gateway, gw_id).online)
