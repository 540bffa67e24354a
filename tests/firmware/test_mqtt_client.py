"""firmware/gw/mqtt.py on the real MicroPython binary against real brokers (Mosquitto and amqtt).

The MicroPython side is tests/firmware/mpy/mqtt_scenarios.py; this side observes and drives it
with paho-mqtt 2. Every wait is bounded and every process is killed on the way out.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.brokers import AmqttBroker, Mosquitto
from emulator import micropython

pytestmark = pytest.mark.micropython

SCRIPT = micropython.REPO / "tests" / "firmware" / "mpy" / "mqtt_scenarios.py"
FIRMWARE = micropython.REPO / "firmware"
HEAP = "220K"  # an ESP32 with ~110 KB free, as the emulated board profile has it


def big_payload(n: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) & 255 for i in range(n))


class Mpy:
    """A running `micropython mqtt_scenarios.py ...` whose output lines are read as they come."""

    def __init__(self, *args: str, heap: str = HEAP):
        env = dict(os.environ, MICROPYPATH=micropython.search_path(FIRMWARE))
        self.proc = subprocess.Popen(micropython.command(SCRIPT, *args, heap=heap), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
                                     cwd=micropython.REPO)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._pumper = threading.Thread(target=self._pump, daemon=True)
        self._pumper.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 10.0) -> list[str]:
        """The next line starting with prefix, split in words; fails on timeout, exit or a traceback."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} within {timeout} s; output so far:\n" + self.output()) from None
            if line is None:
                self.lines.put(None)
                raise AssertionError(f"micropython exited ({self.proc.wait(5)}) before {prefix!r}:\n" + self.output())
            self.seen.append(line)
            if line.startswith(prefix):
                return line.split()
            if line.startswith(("Traceback", "FAIL")):
                raise AssertionError(f"micropython failed while waiting for {prefix!r}:\n" + self.output())

    def msgs(self) -> list[list[str]]:
        return [line.split() for line in self.seen if line.startswith("MSG ")]

    def output(self) -> str:
        time.sleep(0.1)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self.lines.put(None)
                break
            self.seen.append(line)
        return "\n".join(self.seen)

    def finish(self, timeout: float = 10.0) -> int:
        self.expect("END", timeout)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self._pumper.join(5)
        self.proc.stdout.close()

    def __enter__(self) -> Mpy:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def run_mpy(*args: str, timeout: float = 20.0) -> Mpy:
    """Run a scenario to its END (exit code 0) and return it for its lines."""
    with Mpy(*args) as m:
        assert m.finish(timeout) == 0, m.output()
        return m


class Paho:
    """A paho-mqtt 2 client on its own network thread, collecting what it receives."""

    def __init__(self, broker, client_id: str = "pytest", **kw):
        self.got: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=paho.MQTTv311, **kw)
        self.c.on_message = lambda c, u, m: self.got.put(m)
        self._suback = threading.Event()
        self.c.on_subscribe = lambda *a: self._suback.set()
        connected = threading.Event()
        self.c.on_connect = lambda *a: connected.set()
        self.c.connect(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        assert connected.wait(5), "paho did not connect"

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._suback.clear()
        self.c.subscribe(topic, qos)
        assert self._suback.wait(5), "no SUBACK for paho"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published(), f"paho publish to {topic} not acked"

    def get(self, timeout: float = 5.0) -> paho.MQTTMessage:
        try:
            return self.got.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"paho received nothing within {timeout} s") from None

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    def __enter__(self) -> Paho:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def addr(broker) -> tuple[str, str]:
    return broker.host, str(broker.port)


# --- tests ------------------------------------------------------------------------------------------


def test_protocol_helpers():
    proc = micropython.run(SCRIPT, "helpers", extra_path=[FIRMWARE], timeout=30)
    assert proc.returncode == 0 and "PASS helpers" in proc.stdout, proc.stdout + proc.stderr


def test_retained_70k_qos1_table_arrives_intact(broker):
    payload = big_payload(70_000, 3)
    topic = "citygate/v1/gw/mpy-ret/table"
    with Paho(broker) as ctl:
        ctl.publish(topic, payload, qos=1, retain=True)
    m = run_mpy("retained", *addr(broker), topic)
    (msg,) = m.msgs()
    assert msg[1:5] == [topic, "70000", hashlib.sha256(payload).hexdigest(), "1"], msg  # retained flag set
    assert "CONNECTED 1" in m.seen


def test_qos1_publish_is_acked_and_concurrent_publishes_do_not_interleave(broker):
    with Paho(broker) as ctl:
        ctl.subscribe("t/pub/#", 1)
        m = run_mpy("publish", *addr(broker), "t/pub")
        got = [ctl.get() for _ in range(7)]
    one = [g for g in got if g.topic == "t/pub/one"]
    assert [(g.payload, g.qos) for g in one] == [(b"hello", 1)]
    many = sorted((g.payload for g in got if g.topic == "t/pub/many"), key=len)
    sizes = (10, 20000, 3, 40000, 100)
    assert many == sorted((big_payload(n, i) for i, n in enumerate(sizes)), key=len)
    assert [g.payload for g in got if g.topic == "t/pub/q0"] == [b"qos0"]
    assert "PUBACKED many 5" in " ".join(m.seen)


def test_last_will_is_published_when_the_board_dies(broker):
    topic = "citygate/v1/gw/mpy-will/state"
    with Paho(broker) as ctl:
        ctl.subscribe(topic, 1)
        with Mpy("will", *addr(broker), topic) as m:
            m.expect("READY")
            assert ctl.get().payload == b'{"online": true}'
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait(5)
        will = ctl.get(5)
    assert (will.topic, will.payload, will.qos) == (topic, b'{"online": false}', 1)
    with Paho(broker, client_id="late") as late:  # and it replaced the retained state
        late.subscribe(topic, 1)
        assert late.get().payload == b'{"online": false}'


def test_keepalive_pings_keep_an_idle_session_alive(broker):
    with Paho(broker) as ctl:
        ctl.subscribe("t/ka", 1)
        with Mpy("keepalive", *addr(broker), "t/ka") as m:
            m.expect("READY")
            assert m.expect("IDLE_OK", 14) == ["IDLE_OK", "1"], m.output()
            assert ctl.get().payload == b"still-here"  # same connection, 10 s later
            m.expect("CONNECTED 1")
            assert m.finish() == 0


def test_client_notices_broker_stop(broker):
    with Mpy("outage", *addr(broker), "t/out") as m:
        m.expect("READY")
        t0 = time.monotonic()
        broker.stop()
        dead = m.expect("DEAD", 12)
        took = time.monotonic() - t0
        assert took < 8, f"noticed after {took:.1f} s: {dead}"
        assert dead[2] == "0", "connected still True"
        assert m.finish() == 0
    pub = next(line.split() for line in m.seen if line.startswith("PUB_"))
    assert pub[:2] == ["PUB_ERR", "-2"], pub  # DOWN: not connected any more
    assert "PUBLISH_ERR -2" in m.seen


def test_client_notices_a_silent_broker_by_keepalive(broker):
    """The broker hangs (SIGSTOP / blocked loop): no FIN, no PINGRESP; keepalive 3 s -> dead by 4.5 s.

    Meanwhile a QoS 1 publish (sent, then resent twice with DUP) times out after its 2 s.
    """
    with Paho(broker) as ctl:
        ctl.subscribe("t/out", 1)
        with Mpy("outage", *addr(broker), "t/out") as m:
            m.expect("READY")
            t0 = time.monotonic()
            broker.pause()
            try:
                dead = m.expect("DEAD", 14)
            finally:
                broker.resume()
            took = time.monotonic() - t0
            assert 2.5 < took < 9, f"declared dead after {took:.1f} s: {dead}"
            assert dead[2] == "0" and "keepalive" in " ".join(dead[3:]), dead
            assert m.finish() == 0
        pub = next(line.split() for line in m.seen if line.startswith("PUB_"))
        assert pub[:2] == ["PUB_ERR", "-1"] and 1900 <= int(pub[2]) <= 2600, pub  # TIMEOUT
        # the broker read the three copies once it woke up: QoS 1 is at least once
        copies = [ctl.get(3).payload]
        while True:
            try:
                copies.append(ctl.get(0.5).payload)
            except AssertionError:
                break
        assert copies and set(copies) == {b"during-outage"} and len(copies) <= 3, copies


def test_persistent_session_gets_qos1_messages_sent_while_offline(broker):
    topic = "citygate/v1/gw/mpy-sess/cmd"
    run_mpy("session", *addr(broker), "subscribe", topic)
    with Paho(broker) as ctl:
        for i in range(3):
            ctl.publish(topic, b"m%d" % i, qos=1)  # the board is offline now
        m = run_mpy("session", *addr(broker), "collect", topic, "3")
    assert "SESSION_PRESENT 1" in m.seen
    assert [x[5] for x in m.msgs()] == ["m0", "m1", "m2"], m.output()  # once each, in order


def test_message_is_acked_only_once_handled(mosquitto):
    """A board that dies inside on_message gets the message again on its next connection.

    Mosquitto only: amqtt 0.12 drops an unacked outgoing QoS 1 message when the connection
    ends (its PUBACK waiter is cancelled and the message leaves the session), so it never
    redelivers, against MQTT-4.4.0-1.
    """
    topic = "citygate/v1/gw/mpy-sess/cmd"
    run_mpy("session", *addr(mosquitto), "subscribe", topic)
    with Paho(mosquitto) as ctl:
        ctl.publish(topic, b"m3", qos=1)
        with Mpy("session", *addr(mosquitto), "crash", topic, "1") as crash:
            assert crash.expect("MSG")[5] == "m3"
            crash.expect("HANGING")
            crash.proc.send_signal(signal.SIGKILL)
            crash.proc.wait(5)
        m = run_mpy("session", *addr(mosquitto), "collect", topic, "1")
    assert [x[5] for x in m.msgs()] == ["m3"], m.output()


def test_slow_coroutine_on_message_does_not_stall_keepalive_or_acks(broker):
    with Paho(broker) as ctl:
        ctl.subscribe("t/slow/reply", 1)
        with Mpy("slow", *addr(broker), "t/slow/in", "t/slow/reply") as m:
            m.expect("READY")
            ctl.publish("t/slow/in", b"slow", qos=1)
            ctl.publish("t/slow/in", b"fast", qos=1)  # queued behind the slow one
            m.expect("HANDLER done slow 1", 10)
            m.expect("HANDLER done fast 1", 5)
            m.expect("CONNECTED 1")
            assert m.finish() == 0
        assert [ctl.get().payload for _ in range(3)] == [b"re:slow", b"re:fast", b"after"]
    starts = [s for s in m.seen if s.startswith("HANDLER")]
    assert starts == ["HANDLER start slow", "HANDLER done slow 1", "HANDLER start fast", "HANDLER done fast 1"]


@pytest.mark.parametrize("cls", [Mosquitto, AmqttBroker], ids=["mosquitto", "amqtt"])
def test_refused_connection_raises_with_the_connack_code(cls):
    with cls(passwords={"mpy-bad": "right"}) as b:
        m = run_mpy("refused", *addr(b))
    assert "REFUSED 5" in m.seen, m.output()  # 5: not authorized
