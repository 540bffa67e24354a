"""The bridge on an mqtts:// broker: a real Mosquitto with a TLS listener and password auth, its
certificates made by tests/tlscerts.py; the broker is checked against the configured CA."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from controller.brokers import Mosquitto
from controller.db import Database
from controller.ingest.bridge import Bridge, broker_endpoint
from controller.models import Record
from protocols import messages, topics
from tests import tlscerts


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    return tlscerts.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_broker(certs):
    extra = tlscerts.listener(certs)
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
