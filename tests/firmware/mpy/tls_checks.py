# MicroPython side of tests/firmware/test_mqtt_tls.py: gw.tls and gw.mqtt over TLS against a real broker.
#   micropython tls_checks.py units CA.pem
#   micropython tls_checks.py connect HOST PORT CA.pem  -> CONNECTED heap, ECHOED n, END | REFUSED code text
# One machine-readable line per result; a traceback (exit 1) on a failed check.
import asyncio
import binascii
import gc
import hashlib
import sys

from gw import mqttwire, tls
from gw.mqtt import MQTTClient, MQTTError, parse_url


def out(*a):
    print(*a)


def refused(fn, *args):
    """The TLSConfigError text fn(*args) raises; AssertionError when it accepts."""
    try:
        fn(*args)
    except tls.TLSConfigError as e:
        return str(e)
    raise AssertionError("accepted %r" % (args,))


def units(pem):
    assert parse_url("mqtts://broker.example") == ("broker.example", 8883, True)
    assert parse_url("mqtts://10.0.0.2:8884/x") == ("10.0.0.2", 8884, True)
    assert parse_url("mqtt://10.0.0.2") == ("10.0.0.2", 1883, False)
    for bad in ("http://x", "mqtts://", "mqtts://h:0", "mqtts://h:70000", "mqtts://h:x"):
        try:
            parse_url(bad)
            raise AssertionError("accepted " + bad)
        except ValueError:
            pass
    one = tls.der_certs(pem)
    assert len(one) == 1 and one[0][0] == 0x30, one
    assert tls.der_certs(pem.encode()) == one  # bytes of PEM, as read from a file
    assert tls.der_certs(one[0]) == one  # DER as it is
    assert len(tls.der_certs(pem + "\n" + pem)) == 2  # a root and an intermediate
    assert "needs broker_ca" in refused(tls.der_certs, None)
    assert "needs broker_ca" in refused(tls.context, "")
    assert "no PEM certificate" in refused(tls.der_certs, "hello")
    assert "more than" in refused(tls.der_certs, "x" * (tls.MAX_CA + 1))
    assert "more than 4" in refused(tls.der_certs, pem * 5 if len(pem) * 5 <= tls.MAX_CA else tls.BEGIN * 5)
    assert "cut short" in refused(tls.der_certs, pem[:len(pem) // 2])
    assert "not base64" in refused(tls.der_certs, tls.BEGIN + "\n!!!\n" + tls.END)
    assert "neither PEM" in refused(tls.der_certs, b"\xff\xfe\x00garbage")
    junk = binascii.b2a_base64(b"\x30\x12" + b"\x02\x01\x01" * 6).decode()  # DER-shaped, no certificate
    assert "not a valid X.509" in refused(tls.context, tls.BEGIN + "\n" + junk + tls.END)
    assert "not a valid X.509" in refused(tls.context, b"\x30\x03\x02\x01\x01")
    ctx = tls.context(pem)
    import ssl

    assert ctx.verify_mode == ssl.CERT_REQUIRED, ctx.verify_mode
    assert tls.is_failure(ValueError("\nThe certificate is not correctly signed by the trusted CA\n"))
    assert tls.is_failure(OSError(-0x7780, "SSL - A fatal alert message was received from our peer"))
    assert not tls.is_failure(OSError(111))
    assert tls.why(ValueError("\nThe certificate Common Name (CN) does not match\n\nwith the expected CN\n")) == \
        "The certificate Common Name (CN) does not match with the expected CN"
    assert tls.why(OSError(-0x7780, "SSL - fatal\nalert")) == "SSL - fatal alert"
    assert tls.clock_ready(None) and tls.clock_ready(0)  # the unix port: the host's clock, no machine.RTC to set
    assert mqttwire.TLS == -4 and tls.TLSConfigError("x").code == mqttwire.TLS  # the link alarms on both
    out("PASS units")


async def connect(host, port, pem):
    gc.collect()
    free0 = gc.mem_free()
    c = MQTTClient("mpy-tls", host, port, keepalive=30, clean_session=True, ssl=tls.context(pem))
    got = []
    ev = asyncio.Event()

    def on_message(topic, payload, retained):
        got.append((topic, len(payload), hashlib.sha256(payload).digest()))
        ev.set()

    c.on_message = on_message
    try:
        await c.connect(5000)
    except MQTTError as e:
        out("REFUSED", e.code, e.args[1])
        return
    gc.collect()
    out("CONNECTED", free0 - gc.mem_free())
    await c.subscribe("tls/echo", 1)
    sent = []
    for n in (5, 3000, 20000, 40000):  # TLS records of 4 KiB and 16 KiB, read 512 bytes at a time
        p = bytes((i * 7 + n) & 255 for i in range(n))
        sent.append(("tls/echo", n, hashlib.sha256(p).digest()))
        await c.publish("tls/echo", p, qos=1, timeout_ms=10000)
    del p
    for _ in range(50):
        if len(got) >= len(sent):
            break
        ev.clear()
        await asyncio.wait_for_ms(ev.wait(), 10000)
    assert got == sent, (len(got), [g[1] for g in got])
    out("ECHOED", len(got), "free", gc.mem_free())
    await c.disconnect()
    out("END")


def main():
    with open(sys.argv[2 if sys.argv[1] == "units" else 4]) as f:
        pem = f.read()
    if sys.argv[1] == "units":
        return units(pem)
    asyncio.run(connect(sys.argv[2], int(sys.argv[3]), pem))


main()
