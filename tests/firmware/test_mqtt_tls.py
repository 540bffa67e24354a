"""mqtts:// on the board: gw.tls and gw.mqtt on the real MicroPython binary, and an emulated board, against
a real Mosquitto with TLS listeners whose certificates are made here (tests/tlscerts.py).

The broker has a plain listener for the controller's side (hil_tests.peer) and TLS listeners for the
board: one with a certificate for 127.0.0.1, one signed by the same CA for another name. The board
verifies the certificate and the host name, and a failure is told by name, never a silent plain link.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from controller.brokers import Mosquitto, free_port, wait_port
from emulator import micropython
from emulator.board import EmulatedRig
from hil_tests.peer import ControllerPeer
from tests import tlscerts
from tests.conditions import until

pytestmark = pytest.mark.micropython

SCRIPT = micropython.REPO / "tests" / "firmware" / "mpy" / "tls_checks.py"
FIRMWARE = micropython.REPO / "firmware"
KEY = "5a" * 32
PROFILE = "esp32-2gsm"  # 220K: the smallest board that would run mqtts://
UNTRUSTED = "tls: The certificate is not correctly signed by the trusted CA"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tlscerts.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_broker(certs):
    """`.port` plain (the controller's side), `.tls_port` (127.0.0.1's certificate), `.elsewhere_port`
    (a certificate from the same CA for broker.example)."""
    tls_port, elsewhere_port = free_port(), free_port()
    extra = tlscerts.listener(certs, tls_port) + tlscerts.listener(certs, elsewhere_port, "elsewhere")
    with Mosquitto(conf_extra=extra) as broker:
        for port in (tls_port, elsewhere_port):
            wait_port("127.0.0.1", port, 5)
        broker.tls_port, broker.elsewhere_port = tls_port, elsewhere_port
        yield broker


def mpy(*args: str, timeout: float = 60) -> list[str]:
    env = dict(os.environ, MICROPYPATH=micropython.search_path(FIRMWARE))
    run = subprocess.run(micropython.command(SCRIPT, *args, heap="220K"), capture_output=True, text=True,
                         timeout=timeout, env=env, cwd=micropython.REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.splitlines()


def test_tls_config_checks_on_micropython(certs):
    """Broker URLs, PEM and DER CAs, and every way a CA can be unusable (no context, never an unchecked one)."""
    assert mpy("units", str(certs / "ca.crt")) == ["PASS units"]


def test_client_round_trip_over_tls(tls_broker, certs):
    """CONNECT, SUBSCRIBE and QoS 1 payloads up to 40 KB both ways through TLS records, read 512 bytes a time."""
    out = mpy("connect", "127.0.0.1", str(tls_broker.tls_port), str(certs / "ca.crt"))
    assert out[0].startswith("CONNECTED") and out[1].startswith("ECHOED 4") and out[-1] == "END", out


def test_client_refuses_a_broker_it_cannot_verify(tls_broker, certs):
    """Another CA, a certificate for another name, a plain port: each refused, the first two as TLS (-4)
    with mbedTLS's reason."""
    wrong_ca = mpy("connect", "127.0.0.1", str(tls_broker.tls_port), str(certs / "other-ca.crt"))
    assert wrong_ca == ["REFUSED -4 " + UNTRUSTED]
    wrong_name = mpy("connect", "127.0.0.1", str(tls_broker.elsewhere_port), str(certs / "ca.crt"))
    assert wrong_name == ["REFUSED -4 tls: The certificate Common Name (CN) does not match with the expected CN"]
    plain = mpy("connect", "127.0.0.1", str(tls_broker.port), str(certs / "ca.crt"))
    assert len(plain) == 1 and plain[0].startswith("REFUSED -2 "), plain


def small_table(gw: str, version: int = 1) -> dict:
    return {"schema": 1, "gateway": gw, "version": version, "issued_at": 1790000000, "tz": "UTC0", "deny": [],
            "closed": [], "targets": {"centre": {"number": "+380629000001", "via": ["gsm2"], "ring_timeout_s": 3}},
            "routes": [{"id": "basic", "port": "*", "caller": ["+380"], "targets": ["centre"]}]}


def test_board_comes_online_over_mqtts(tls_broker, certs):
    """A board given an mqtts:// broker and its CA connects, says it is online, and takes a table."""
    gw = "gw-tls-1"
    with ControllerPeer(tls_broker.url) as peer, \
            EmulatedRig(gw, KEY, f"mqtts://127.0.0.1:{tls_broker.tls_port}", profile=PROFILE,
                        broker_ca=(certs / "ca.crt").read_text()) as rig:
        try:
            rig.wait_console(rf"link: connected to 127\.0\.0\.1:{tls_broker.tls_port}", timeout=60)
            state = peer.wait_state(gw, timeout=30)
            assert state["online"] and state["profile"] == PROFILE
            body = small_table(gw)
            peer.push_table(gw, json.dumps(body).encode(), KEY)
            assert peer.wait_ack(gw, 1, timeout=30)["status"] == "applied"
        except BaseException:
            print(rig.console())
            raise


def test_board_with_the_wrong_ca_stays_offline_says_why_and_alarms(tls_broker, certs):
    """The wrong CA: no session (no state ever reaches the controller), the reason on the console at every
    retry, and a broker_tls alarm in the outbox, delivered once the board is given the right CA."""
    gw = "gw-tls-2"
    with ControllerPeer(tls_broker.url) as peer, \
            EmulatedRig(gw, KEY, f"mqtts://127.0.0.1:{tls_broker.tls_port}", profile=PROFILE,
                        broker_ca=(certs / "other-ca.crt").read_text()) as rig:
        try:
            rig.wait_console("link: .*" + UNTRUSTED, timeout=60)
            rig.wait_console("link: .*" + UNTRUSTED, timeout=30, after=rig.console_mark())  # retried (backoff)
            assert gw not in peer.states
            rig.power_off()
            board = json.loads((rig.workdir / "board.json").read_text())
            board["provision"]["broker_ca"] = (certs / "ca.crt").read_text()  # re-provisioned with the right CA
            (rig.workdir / "board.json").write_text(json.dumps(board))
            rig.power_on()
            assert peer.wait_state(gw, timeout=60)["online"]
            until(lambda: any(r.get("code") == "broker_tls" for (g, _, _), r in list(peer.records.items())
                              if g == gw), timeout=30, what="the broker_tls alarm")
            alarm = next(r for (g, _, _), r in peer.records.items() if g == gw and r.get("code") == "broker_tls")
            assert alarm["detail"] == UNTRUSTED
        except BaseException:
            print(rig.console())
            raise
