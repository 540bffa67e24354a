"""The bridge on an mqtts:// broker: a real Mosquitto with a TLS listener and password auth, its
certificate made here by openssl; the broker is checked against the configured CA."""

from __future__ import annotations

import shutil
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from controller.bridge import Bridge, broker_endpoint
from controller.brokers import Mosquitto
from controller.db import Database
from controller.models import Record
from protocols import messages, topics

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    d = tmp_path_factory.mktemp("tls")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=citygate test {ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.crt", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
    return d


@pytest.fixture
def tls_broker(certs):
    extra = f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
    with Mosquitto(conf_extra=extra, passwords={"ctl": "s3cret", "gw-mariupol-1": "gwpass"}) as broker:
        yield broker


def test_broker_urls_name_their_parts():
    assert broker_endpoint("mqtts://ctl:p%40ss@broker.example:8884") == ("broker.example", 8884, True, "ctl", "p@ss")
    assert broker_endpoint("mqtts://broker.example") == ("broker.example", 8883, True, None, None)
    assert broker_endpoint("mqtt://10.0.0.2") == ("10.0.0.2", 1883, False, None, None)
    with pytest.raises(ValueError, match="mqtt:// or mqtts://"):
        broker_endpoint("http://broker.example")


def test_bridge_ingests_over_tls_with_url_credentials(tls_broker, certs, tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.upgrade()
    bridge = Bridge(db, f"mqtts://ctl:s3cret@127.0.0.1:{tls_broker.port}", client_id="ctl-tls",
                    ca_file=str(certs / "ca.crt")).start(wait_s=10)
    gw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-mariupol-1")
    gw.username_pw_set("gw-mariupol-1", "gwpass")
    gw.tls_set(ca_certs=str(certs / "ca.crt"))
    try:
        assert bridge.connected.is_set(), tls_broker.log()[-2000:]
        gw.connect("127.0.0.1", tls_broker.port)
        gw.loop_start()
        rec = messages.call_record(1, 1469500000, "gsm1", "+380671234567", "police-102", "answered",
                                   "mariupol-102", 1, 3, 20, "ok")
        gw.publish(topics.events("gw-mariupol-1"), messages.encode("events", messages.events("s-tls", [rec])),
                   qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while bridge.stats["records"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Record)) == 1
    finally:
        gw.loop_stop()
        gw.disconnect()
        bridge.stop()
        db.engine.dispose()


def test_bridge_refuses_a_broker_its_ca_did_not_sign(tls_broker, certs, tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.upgrade()
    bridge = Bridge(db, f"mqtts://127.0.0.1:{tls_broker.port}", "ctl", "s3cret", client_id="ctl-tls",
                    ca_file=str(certs / "other-ca.crt")).start(wait_s=3)
    try:
        assert not bridge.connected.is_set()
    finally:
        bridge.stop()
        db.engine.dispose()
