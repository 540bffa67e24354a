# MicroPython side of tests/firmware/test_mqtt_client.py: drives gw.mqtt against a real broker.
#   micropython mqtt_scenarios.py SCENARIO HOST PORT [ARGS...]
# Prints one machine-readable line per event ("READY", "MSG topic len sha256 retained", ...);
# "FAIL ..." or a traceback with exit code 1 on error.
import asyncio
import gc
import hashlib
import sys
from time import ticks_diff, ticks_ms

from gw import mqtt
from gw import mqttwire as wire
from gw.mqtt import MQTTClient, MQTTError


def out(*a):
    print(*a)
    try:
        sys.stdout.flush()
    except AttributeError:
        pass


def hexdigest(b):
    return "".join("%02x" % x for x in hashlib.sha256(b).digest())


def big_payload(n, seed):
    # deterministic, not all-same bytes (the host side builds the same)
    return bytes((i * 7 + seed) & 255 for i in range(n))


class Inbox:
    def __init__(self):
        self.msgs = []
        self.ev = asyncio.Event()

    def __call__(self, topic, payload, retained):
        self.msgs.append((topic, payload, retained))
        out("MSG", topic, len(payload), hexdigest(payload), int(retained),
            bytes(payload).decode() if len(payload) <= 24 else "-")
        self.ev.set()

    async def wait(self, n, ms):
        t0 = ticks_ms()
        while len(self.msgs) < n:
            left = ms - ticks_diff(ticks_ms(), t0)
            if left <= 0:
                raise MQTTError(mqtt.TIMEOUT, "only %d of %d messages" % (len(self.msgs), n))
            self.ev.clear()
            try:
                await asyncio.wait_for_ms(self.ev.wait(), left)
            except asyncio.TimeoutError:  # noqa: UP041 (MicroPython has no builtin TimeoutError)
                pass


def helpers():
    enc, dec = wire.enc_varint, wire.dec_varint
    for n, b in ((0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"),
                 (2097151, b"\xff\xff\x7f"), (2097152, b"\x80\x80\x80\x01"), (268435455, b"\xff\xff\xff\x7f")):
        assert enc(n) == b, (n, enc(n))
        assert dec(b"\x30" + b, 1) == (n, 1 + len(b)), n
    for bad in (-1, 268435456):
        try:
            enc(bad)
            raise AssertionError("accepted %d" % bad)
        except ValueError:
            pass
    try:
        dec(b"\xff\xff\xff\xff\x01")
        raise AssertionError("5-byte varint accepted")
    except ValueError:
        pass
    assert wire.enc_str("ab") == b"\x00\x02ab"
    assert wire.enc_str("é") == b"\x00\x02\xc3\xa9"
    p = wire.connect_packet("gw-1", 30, False, ("t/w", b"x", 1, True), "gw-1", "pw")
    assert p[0] == 0x10 and wire.dec_varint(p, 1) == (len(p) - 2, 2), p
    assert p[2:12] == b"\x00\x04MQTT\x04\xec\x00\x1e", p[2:12]  # user, pass, will retain, will qos 1, will, no clean
    assert p[12:] == b"\x00\x04gw-1\x00\x03t/w\x00\x01x\x00\x04gw-1\x00\x02pw", p[12:]
    p = wire.connect_packet("c", 0, True)
    assert p == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01c", p
    h = wire.publish_header("a/b", 200, 1, True, 0x1234)
    assert isinstance(h, bytearray)  # publish() flips the DUP bit in place
    assert h == b"\x33\xcf\x01\x00\x03a/b\x12\x34", h  # 2+3+2+200 = 207
    h = wire.publish_header("a", 1, 0, False, dup=True)
    assert h == b"\x38\x04\x00\x01a", h
    assert wire.subscribe_packet(5, "x/#", 1) == b"\x82\x08\x00\x05\x00\x03x/#\x01"
    assert wire.puback(0x0102) == b"\x40\x02\x01\x02"
    out("PASS helpers")


async def connected_client(host, port, **kw):
    kw.setdefault("keepalive", 30)
    c = MQTTClient(kw.pop("client_id", "mpy-test"), host, port, **kw)
    await c.connect(5000)
    return c


async def scenario(name, host, port, args):
    if name == "retained":  # subscribe and get a big retained message
        topic = args[0]
        inbox = Inbox()
        c = await connected_client(host, port, client_id="mpy-ret", on_message=inbox, clean_session=True)
        gc.collect()
        out("SUBACK", await c.subscribe(topic, 1), "free", gc.mem_free())
        await inbox.wait(1, 10000)
        out("CONNECTED", int(c.connected))
        await c.disconnect()

    elif name == "publish":  # one QoS 1 publish, then 5 at once from 5 tasks
        topic = args[0]
        c = await connected_client(host, port, client_id="mpy-pub")
        t0 = ticks_ms()
        await c.publish(topic + "/one", b"hello", qos=1)
        out("PUBACKED one", ticks_diff(ticks_ms(), t0))
        sizes = (10, 20000, 3, 40000, 100)

        async def one(i):
            await c.publish(topic + "/many", big_payload(sizes[i], i), qos=1, timeout_ms=8000)
            return i

        t0 = ticks_ms()
        done = await asyncio.gather(*[one(i) for i in range(len(sizes))])
        out("PUBACKED many", len(done), ticks_diff(ticks_ms(), t0))
        await c.publish(topic + "/q0", b"qos0", qos=0)
        out("CONNECTED", int(c.connected))
        await c.disconnect()

    elif name == "will":  # connect with a will, then wait to be killed
        c = await connected_client(host, port, client_id="mpy-will",
                                   will=(args[0], b'{"online": false}', 1, True))
        await c.publish(args[0], b'{"online": true}', qos=1, retain=True)
        out("READY")
        await asyncio.sleep(30)
        out("NOT KILLED")

    elif name == "keepalive":  # 3 s keepalive, idle for 10 s, then use the same connection
        c = await connected_client(host, port, client_id="mpy-ka", keepalive=3)
        out("READY")
        for _ in range(10):
            await asyncio.sleep(1)
            if not c.connected:
                out("DROPPED", repr(c.error))
                return
        out("IDLE_OK", int(c.connected))
        await c.publish(args[0], b"still-here", qos=1)
        out("CONNECTED", int(c.connected))
        await c.disconnect()

    elif name == "outage":  # the broker goes away (stopped or silent): notice it
        c = await connected_client(host, port, client_id="mpy-out", keepalive=3)
        out("READY")

        async def pub():  # a QoS 1 publish 1 s into the outage, 2 s timeout
            await asyncio.sleep_ms(1000)
            t1 = ticks_ms()
            try:
                await c.publish(args[0], b"during-outage", qos=1, timeout_ms=2000)
                out("PUB_OK")
            except MQTTError as e:
                out("PUB_ERR", e.code, ticks_diff(ticks_ms(), t1))

        task = asyncio.create_task(pub())
        t0 = ticks_ms()
        try:
            await c.wait_closed(20000)
        except asyncio.TimeoutError:  # noqa: UP041 (MicroPython has no builtin TimeoutError)
            out("NOT NOTICED")
            return
        out("DEAD", ticks_diff(ticks_ms(), t0), int(c.connected), repr(c.error))
        await task
        try:
            await c.publish("x", b"y", qos=1)
            out("PUBLISHED WHILE DEAD")
        except MQTTError as e:
            out("PUBLISH_ERR", e.code)

    elif name == "session":  # persistent session: subscribe once, later come back for the backlog
        phase, topic = args[0], args[1]
        want = int(args[2]) if len(args) > 2 else 0
        inbox = Inbox()
        hang = phase == "crash"

        async def handler(t, p, r):
            inbox(t, p, r)
            if hang:
                out("HANGING")
                await asyncio.sleep(60)

        c = await connected_client(host, port, client_id="mpy-sess", user="mpy-sess", clean_session=False,
                                   on_message=handler)
        out("SESSION_PRESENT", int(c.session_present))
        if phase == "subscribe":
            out("SUBACK", await c.subscribe(topic, 1))
        else:
            await inbox.wait(want, 8000)
            await asyncio.sleep_ms(300)  # let the acks go out (and catch extra copies)
        out("COUNT", len(inbox.msgs))
        await c.disconnect()

    elif name == "slow":  # a slow coroutine on_message must not stall keepalive or acks
        topic, reply = args[0], args[1]
        done = asyncio.Event()
        c = None

        async def handler(t, p, r):
            p = bytes(p)
            out("HANDLER start", p.decode())
            if p == b"slow":
                await asyncio.sleep_ms(5500)  # > 1.5 x keepalive
            await c.publish(reply, b"re:" + p, qos=1)  # QoS 1 from inside the handler
            out("HANDLER done", p.decode(), int(c.connected))
            if p == b"fast":
                done.set()

        c = await connected_client(host, port, client_id="mpy-slow", keepalive=3, on_message=handler,
                                   clean_session=True)
        await c.subscribe(topic, 1)
        out("READY")
        await asyncio.wait_for_ms(done.wait(), 15000)
        await c.publish(reply, b"after", qos=1)
        out("CONNECTED", int(c.connected))
        await c.disconnect()

    elif name == "refused":  # bad password: MQTTError with the CONNACK code
        try:
            await connected_client(host, port, client_id="mpy-bad", user="mpy-bad", password="wrong")
            out("CONNECTED")
        except MQTTError as e:
            out("REFUSED", e.code)
    else:
        raise ValueError("unknown scenario " + name)


def main():
    name = sys.argv[1]
    if name == "helpers":
        return helpers()
    asyncio.run(scenario(name, sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
    out("END")


main()
