"""Gateway credentials and the DESIGN §3 ACL on both brokers the product uses, no mocks:

- "embedded": the ControllerService's own amqtt broker, checking passwords against the database;
- "mosquitto": a real Mosquitto configured only from `citygate broker config` output.

Two gateways registered the real way (their passwords come from registration), the reference
gateways seeded without any password, and a test controller client on the controller's account.
"""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from controller import reference
from controller.api.routes.gateways import mqtt_password
from controller.brokers import free_port
from controller.cli import app
from controller.service import ControllerService
from controller.settings import Settings, get_settings
from protocols import messages, topics
from tests.controller.broker_config_rig import CTL_PW, CTL_USER, SECRET, A, B, configured_mosquitto, registered_db
from tests.controller.mqtt_probe import Client

T = topics


@pytest.fixture
def db(tmp_path, monkeypatch):
    yield from registered_db(tmp_path, monkeypatch)


def _service(database, **kw) -> ControllerService:
    return ControllerService(Settings(database_url=database.url, broker="embedded", secret_key=SECRET,
                                      listen_port=free_port(), **kw)).start()


@pytest.fixture(params=["embedded", "mosquitto"])
def broker(request, db, tmp_path):
    """(kind, url, gateway passwords): a broker enforcing §3, the controller account CTL_USER / CTL_PW."""
    database, passwords = db
    if request.param == "embedded":
        service = _service(database, broker_password=CTL_PW)
        try:
            assert service.bridge.connected.is_set(), "the controller's own bridge got in"
            yield "embedded", service.broker_url, passwords
        finally:
            service.stop()
        return
    with configured_mosquitto() as m:
        yield "mosquitto", m.url, passwords


def test_registered_gateway_connects_with_its_password_and_others_are_refused(broker):
    kind, url, pw = broker
    ok = Client(url, A, A, pw[A])
    assert ok.connect()
    ok.close()
    assert not Client(url, A, A, pw[B]).connect(), "another gateway's password"
    assert not Client(url, A, A, pw[A][:-1] + "x").connect(), "a wrong password"
    assert not Client(url, A, A, None).connect(), "no password"
    assert not Client(url, "gw-nobody-1", "gw-nobody-1", pw[A]).connect(), "an unknown gateway"
    seeded = SimpleNamespace(id="gw-mariupol-1", key_hex=reference.gateway_key("gw-mariupol-1"))
    never = mqtt_password(SECRET, seeded)  # what its password would be, had it been given one
    assert not Client(url, "gw-mariupol-1", "gw-mariupol-1", never).connect(), "seeded, never given a password"
    assert not Client(url, "anon", None, None).connect(), "anonymous"
    assert not Client(url, "ctl-x", CTL_USER, "guess").connect(), "the controller's account, wrong password"
    ctl = Client(url, "ctl-x", CTL_USER, CTL_PW)
    assert ctl.connect()
    ctl.close()


def test_gateway_writes_only_its_own_topics_and_the_controller_reads_all(broker):
    kind, url, pw = broker
    ctl, a, b = Client(url, "ctl-x", CTL_USER, CTL_PW), Client(url, A, A, pw[A]), Client(url, B, B, pw[B])
    assert ctl.connect() and a.connect() and b.connect()
    try:
        ctl.sub(T.ROOT + "/#")
        for topic in (T.events(B), T.state(B), T.table(A), T.cmd(A), T.events_ack(A), T.ROOT + "/other"):
            a.pub(topic, b"forged")  # another gateway's, or its own in the controller's direction
        own = {(T.topic(A, k), k.encode()) for k in T.GATEWAY_PUBLISHES}
        for topic, payload in sorted(own):
            a.pub(topic, payload)
        b.pub(T.state(B), b"b-state")
        seen = ctl.until(own | {(T.state(B), b"b-state")})
        assert not [m for m in seen if m[1] == b"forged"], seen
    finally:
        for c in (ctl, a, b):
            c.close()


def test_the_watch_account_reads_everything_and_publishes_nothing(broker):
    """What `citygate demo` prints for mosquitto_sub: every gateway's traffic, and no way to send a command."""
    from controller.brokers.access import watch_password

    kind, url, pw = broker
    watch = Client(url, CTL_USER + ".watch", CTL_USER + ".watch", watch_password(SECRET))
    ctl, b = Client(url, "ctl-x", CTL_USER, CTL_PW), Client(url, B, B, pw[B])
    assert watch.connect() and ctl.connect() and b.connect()
    assert not Client(url, CTL_USER + ".watch", CTL_USER + ".watch", "guess").connect(), "a wrong password"
    try:
        watch.sub(T.ROOT + "/#")
        b.sub(T.cmd(B))
        watch.pub(T.cmd(B), b"forged")  # refused: a watcher sends no command
        watch.pub(T.events(B), b"forged")
        b.pub(T.state(B), b"b-state")
        ctl.pub(T.cmd(B), b"real")
        watched = watch.until({(T.state(B), b"b-state"), (T.cmd(B), b"real")})  # it reads every gateway's topics
        assert (T.cmd(B), b"forged") not in watched and (T.events(B), b"forged") not in watched, watched
        seen = b.until({(T.cmd(B), b"real")})
        assert (T.cmd(B), b"forged") not in seen, seen
    finally:
        for c in (watch, ctl, b):
            c.close()


def test_gateway_reads_only_its_own_topics(broker):
    kind, url, pw = broker
    ctl, b = Client(url, "ctl-x", CTL_USER, CTL_PW), Client(url, B, B, pw[B])
    assert ctl.connect() and b.connect()
    a = Client(url, A, A, pw[A])
    try:
        ctl.sub(T.ROOT + "/#")  # filters held by others: amqtt 0.12 sent their retained matches to everyone
        b.sub(T.table(B), T.cmd(B))
        ctl.pub(T.table(B), b"b-table", retain=True)
        ctl.pub(T.state(B), b"b-state", retain=True)
        ctl.pub(T.table(A), b"a-table", retain=True)
        assert a.connect()
        a.sub(T.table(B), T.events_ack(B), T.filter("table"), T.ROOT + "/#", "#")
        a.sub(T.table(A), T.cmd(A), T.events_ack(A))
        for topic in (T.cmd(B), T.table(B), T.events_ack(B), T.state(B)):
            ctl.pub(topic, b"for-b")
        ctl.pub(T.cmd(A), b"a-cmd")
        seen = a.until({(T.table(A), b"a-table"), (T.cmd(A), b"a-cmd")})
        assert {t for t, _ in seen} <= {T.table(A), T.cmd(A)}, seen
        assert b.until({(T.table(B), b"b-table"), (T.cmd(B), b"for-b")}), "gw-b reads its own"
    finally:
        for c in (ctl, a, b):
            c.close()


def _die(client: Client) -> None:
    """Drop the TCP connection without DISCONNECT: the broker publishes the last will."""
    sock = client.c.socket()
    client.c.loop_stop()
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_last_will_only_on_the_gateways_own_topics(broker):
    kind, url, pw = broker
    ctl = Client(url, "ctl-x", CTL_USER, CTL_PW)
    assert ctl.connect()
    try:
        ctl.sub(T.ROOT + "/#")
        bad = Client(url, A, A, pw[A], will=(T.state(B), b"forged-will"))
        if bad.connect():  # Mosquitto admits it and drops the will; amqtt refuses the CONNECT
            _die(bad)
        good = Client(url, A, A, pw[A], will=(T.state(A), b"own-will"))
        assert good.connect()
        _die(good)
        seen = ctl.until({(T.state(A), b"own-will")})
        assert (T.state(B), b"forged-will") not in seen, seen
    finally:
        ctl.close()


def test_a_refused_connect_leaves_the_live_session_alone(broker):
    kind, url, pw = broker
    ctl, a = Client(url, "ctl-x", CTL_USER, CTL_PW), Client(url, A, A, pw[A], clean=False,
                                                           will=(T.state(A), b"offline"))
    assert ctl.connect() and a.connect()
    try:
        ctl.sub(T.ROOT + "/#")
        intruder = Client(url, A, A, "wrong", will=(T.events(A), b"forged"), clean=False)
        assert not intruder.connect()
        time.sleep(0.5)
        a.pub(T.events(A), b"still-here")
        seen = ctl.until({(T.events(A), b"still-here")})
        assert not a.cut, "the refused CONNECT cut the gateway off"
        assert not [m for m in seen if m[1] in (b"forged", b"offline")], seen
    finally:
        ctl.close()
        a.close()


def test_embedded_gateway_must_use_its_id_as_client_id(db):
    """§3: the gateway id is both client id and username (Mosquitto's acl_file cannot tie the two)."""
    database, pw = db
    service = _service(database, broker_password=CTL_PW)
    try:
        url = service.broker_url
        assert not Client(url, B, A, pw[A]).connect(), "gw-a's credentials under gw-b's client id"
        assert not Client(url, "something-else", A, pw[A]).connect()
        for good in (Client(url, A, A, pw[A]), Client(url, "any-client-id", CTL_USER, CTL_PW),
                     Client(url, "citygate-cli", CTL_USER + ".cli", CTL_PW)):  # `rollout start`'s, as on Mosquitto
            assert good.connect(), "as itself; the controller's accounts with any client id"
            good.close()
    finally:
        service.stop()


def test_service_without_broker_password_makes_its_own_and_ingests_a_gateway(db):
    database, pw = db
    service = _service(database, broker_password=None)  # unset: the service makes a random one per process
    try:
        assert service.bridge.connected.is_set(), "the controller's bridge got in with its generated password"
        for guess in ("", "citygate-controller", CTL_PW):
            assert not Client(service.broker_url, "ctl-x", CTL_USER, guess).connect(), guess
        _state_reaches_the_database(service, pw)
    finally:
        service.stop()


def test_service_on_configured_mosquitto_signs_in_as_the_controller_and_ingests_a_gateway(db, tmp_path):
    database, pw = db
    with configured_mosquitto() as m:
        service = ControllerService(Settings(database_url=database.url, broker=m.url, secret_key=SECRET,
                                             broker_password=CTL_PW, listen_port=free_port())).start()
        try:  # no CITYGATE_BROKER_USER: the service signs in as citygate-controller, like the config
            assert service.bridge.connected.is_set(), m.log()
            _state_reaches_the_database(service, pw)
        finally:
            service.stop()


def _state_reaches_the_database(service, pw) -> None:
    a = Client(f"mqtt://{service.bridge.host}:{service.bridge.port}", A, A, pw[A])
    assert a.connect()
    try:
        a.pub(T.state(A), messages.encode("state", messages.state(online=True, fw="test")), retain=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _online(service.db, A):
            time.sleep(0.1)
        assert _online(service.db, A), "the gateway's state reached the database through the bridge"
    finally:
        a.close()


def _online(database, gw_id) -> bool:
    from controller.models import Gateway

    with database.session() as s:
        return bool(s.get(Gateway, gw_id).online)


def test_broker_config_refuses_without_a_controller_password(db, tmp_path, monkeypatch):
    monkeypatch.delenv("CITYGATE_BROKER_PASSWORD")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["broker", "config", "--out", str(tmp_path / "out")], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert "CITYGATE_BROKER_PASSWORD" in result.output and not (tmp_path / "out").exists()


def test_broker_config_acl_grants_exactly_section_3(db, tmp_path):
    result = CliRunner().invoke(app, ["broker", "config", "--out", str(tmp_path / "out"), "--owner", "root"],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    acl = (tmp_path / "out" / "acl_file").read_text().splitlines()
    assert acl[:3] == [f"user {CTL_USER}", "topic readwrite citygate/v1/#", ""]
    assert acl[3:5] == [f"user {CTL_USER}.cli", "topic readwrite citygate/v1/#"]  # `citygate rollout start`
    assert f"user {A}" in acl and "topic write citygate/v1/gw/gw-a-1/events" in acl
    assert "topic read citygate/v1/gw/gw-a-1/table" in acl and "user gw-mariupol-1" not in acl
    users = [line.split(":")[0] for line in (tmp_path / "out" / "password_file").read_text().splitlines()]
    assert users == [CTL_USER, CTL_USER + ".cli", CTL_USER + ".watch", A, B]
    assert acl[6:8] == [f"user {CTL_USER}.watch", "topic read citygate/v1/#"], "the watch account only reads"
    assert "listener 1883\n" in (tmp_path / "out" / "citygate.conf").read_text()


def test_deliveries_survive_subscriptions_changing_meanwhile(broker):
    """amqtt 0.12 walks its subscription table around each ACL check: a SUBSCRIBE arriving meanwhile
    must not cut the broadcast short for the subscribers further down that table."""
    kind, url, pw = broker
    if kind == "embedded":  # the controller's account with any client ids
        ctl, late, other = (Client(url, f"ctl-{n}", CTL_USER, CTL_PW) for n in "xyz")
    else:  # Mosquitto names each client by its username: three accounts (gw-b-1's subscriptions are refused)
        ctl, late = (Client(url, user, user, CTL_PW) for user in (CTL_USER, CTL_USER + ".cli"))
        other = Client(url, B, B, pw[B])
    a = Client(url, A, A, pw[A])
    assert ctl.connect() and late.connect() and other.connect() and a.connect()
    try:
        ctl.sub(T.filter("events"))
        late.sub(T.ROOT + "/gw/+/#")  # a later entry in the table
        sent = set()
        for i in range(300):
            a.c.publish(T.events(A), b"%d" % i, qos=1)
            sent.add((T.events(A), b"%d" % i))
            other.c.subscribe(f"{T.ROOT}/x/{i}", qos=1)  # a new entry in the table each time
        assert ctl.until(sent, timeout=30) and late.until(sent, timeout=30)
    finally:
        for c in (ctl, late, other, a):
            c.close()
