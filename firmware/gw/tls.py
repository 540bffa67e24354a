"""TLS under the broker link (mqtts://), the same code on the unix port and on an ESP32.

Both run mbedTLS behind MicroPython's `ssl` module, but the unix port's build parses certificates
in DER only (no PEM, no base64 compiled in) while an ESP32's (ESP-IDF) takes both: the config's
PEM is turned into DER here, so the same bytes load everywhere. The broker's certificate is always
verified, against the config's CA only and for the broker URL's host name: CERT_REQUIRED is set
explicitly (the unix build's default is CERT_NONE), and a config with no usable CA gets no context
at all (TLSConfigError), so mqtts:// never falls back to an unchecked link.

Imported only by a board with an mqtts:// broker (its module costs ~3 KB of heap). gw.mqtt wraps its
non-blocking socket with the context; the handshake runs inside the first write (CONNECT) as asyncio
polls the socket, and mbedTLS sends no application byte (the password) before the server's
certificate has passed.
"""

import binascii

TLS = -4  # gw.mqttwire.TLS (not imported: the controller checks CAs with this module on CPython)

MAX_CA = 8192  # characters of PEM (or bytes of DER) taken from the config: a root and an intermediate or two
MAX_CERTS = 4
BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
EPOCH_2000 = 946684800
CLOCK_FLOOR = 1767225600  # 2026-01-01: an RTC behind this has not been set since the last power cut


class TLSConfigError(ValueError):
    """The device config cannot give a verified TLS link: no CA, or not certificates."""

    code = TLS  # as MQTTError(TLS): the link raises the same alarm for both


def der_certs(ca):
    """broker_ca (PEM text of 1..MAX_CERTS certificates, or one DER certificate) -> [DER bytes]."""
    if not ca:
        raise TLSConfigError("mqtts:// needs broker_ca (the broker's CA certificate) in the device config")
    if len(ca) > MAX_CA:
        raise TLSConfigError("broker_ca is %d long, more than the %d a board takes" % (len(ca), MAX_CA))
    if not isinstance(ca, str):
        if ca[0] == 0x30:  # DER: an ASN.1 SEQUENCE
            return [bytes(ca)]
        try:
            ca = bytes(ca).decode()
        except Exception:
            raise TLSConfigError("broker_ca is neither PEM text nor a DER certificate")
    out, at = [], 0
    while True:
        i = ca.find(BEGIN, at)
        if i < 0:
            break
        j = ca.find(END, i)
        if j < 0:
            raise TLSConfigError("broker_ca: certificate %d is cut short (no END line)" % (len(out) + 1))
        if len(out) == MAX_CERTS:
            raise TLSConfigError("broker_ca holds more than %d certificates" % MAX_CERTS)
        try:
            der = binascii.a2b_base64(ca[i + len(BEGIN):j])
        except ValueError:
            der = b""
        if len(der) < 16 or der[0] != 0x30:
            raise TLSConfigError("broker_ca: certificate %d is not base64 of a DER certificate" % (len(out) + 1))
        out.append(der)
        at = j + len(END)
    if not out:
        raise TLSConfigError("broker_ca holds no PEM certificate")
    return out


def context(ca):
    """A client context that trusts only broker_ca's certificates and requires the server's to pass."""
    import ssl  # only a board with mqtts:// pays for the module

    ders = der_certs(ca)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    for i, der in enumerate(ders):
        try:
            ctx.load_verify_locations(cadata=der)
        except Exception:  # mbedTLS: ValueError("invalid cert") on the unix port, OSError elsewhere
            raise TLSConfigError("broker_ca: certificate %d is not a valid X.509 certificate" % (i + 1))
    return ctx


def is_failure(exc):
    """Did TLS end this connection attempt? Certificate checks raise ValueError; mbedTLS errors are
    OSErrors with a negative code (errno values are positive)."""
    if isinstance(exc, ValueError):
        return True
    code = exc.args[0] if isinstance(exc, OSError) and exc.args else None
    return type(code) is int and code < 0


def why(exc):
    """One line for the log and the alarm: mbedTLS's texts span lines."""
    a = exc.args
    text = a[0] if len(a) == 1 and isinstance(a[0], str) else (a[1] if len(a) > 1 and isinstance(a[1], str)
                                                                 else repr(exc))
    return " ".join(text.split())


def clock_ready(network_now=None):
    """mbedTLS checks certificate dates against the board's RTC, which an ESP32 loses at a power cut
    (2000-01-01: every certificate 'not yet valid'). Set the RTC from the network's time (`network_now`,
    UTC seconds, None when the modems have not given it yet); False while the RTC is not to be trusted,
    so the link waits instead of failing a handshake. The unix port keeps the host's clock and has no
    machine.RTC."""
    import time

    epoch = EPOCH_2000 if time.gmtime(0)[0] == 2000 else 0
    now = time.time() + epoch
    if network_now is not None and abs(now - network_now) >= 60:
        try:
            import machine

            rtc = machine.RTC()
        except (ImportError, AttributeError):
            return now >= CLOCK_FLOOR
        y, mo, d, h, mi, s, wd, _ = time.gmtime(network_now - epoch)
        rtc.datetime((y, mo, d, wd, h, mi, s, 0))
        now = network_now
    return now >= CLOCK_FLOOR
