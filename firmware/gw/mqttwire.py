# MQTT 3.1.1 packets as bytes, apart from any connection (gw.mqtt sends and reads them): pure functions,
# the same on every port, tested byte for byte against the specification's layouts; and the client's errors.

PINGREQ, DISCONNECT = b"\xc0\x00", b"\xe0\x00"

# MQTTError.code: 1..5 CONNACK refusals, 0x80 SUBACK failure, and:
TIMEOUT = -1  # no answer in time (CONNACK, PUBACK, SUBACK, a write, keepalive)
DOWN = -2  # not connected, or the link was lost meanwhile
PROTO = -3  # the broker broke the protocol
TLS = -4  # the TLS handshake failed: the broker's certificate did not verify, or mbedTLS gave up


class MQTTError(Exception):
    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code


def enc_varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("remaining length")
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return out


def dec_varint(buf, off=0):
    """-> (value, offset after it); ValueError past 4 bytes, IndexError when cut short."""
    n = 0
    for i in range(4):
        b = buf[off + i]
        n |= (b & 0x7F) << 7 * i
        if not b & 0x80:
            return n, off + i + 1
    raise ValueError("remaining length")


def enc_str(s):
    s = s.encode() if isinstance(s, str) else s
    if len(s) > 65535:
        raise ValueError("string too long")
    return bytes((len(s) >> 8, len(s) & 255)) + s


def packet(first, body):
    return bytearray((first,)) + enc_varint(len(body)) + body


def connect_packet(client_id, keepalive=30, clean=True, will=None, user=None, password=None):
    flags, body = (2 if clean else 0), enc_str(client_id)
    if will:
        topic, msg, qos, retain = will
        flags |= 4 | qos << 3 | (0x20 if retain else 0)
        body += enc_str(topic) + enc_str(msg)
    if user is not None:
        flags, body = flags | 0x80, body + enc_str(user)
        if password is not None:
            flags, body = flags | 0x40, body + enc_str(password)
    return packet(0x10, b"\x00\x04MQTT\x04" + bytes((flags, keepalive >> 8, keepalive & 255)) + body)


def publish_header(topic, plen, qos=0, retain=False, pid=0, dup=False):
    """Fixed header, topic and packet id of a PUBLISH; the payload goes out after it."""
    t = enc_str(topic)
    h = bytearray((0x30 | qos << 1 | (1 if retain else 0) | (8 if dup else 0),))
    h += enc_varint(len(t) + plen + (2 if qos else 0)) + t
    return h + bytes((pid >> 8, pid & 255)) if qos else h


def subscribe_packet(pid, topic_filter, qos=1):
    return packet(0x82, bytes((pid >> 8, pid & 255)) + enc_str(topic_filter) + bytes((qos,)))


def puback(pid):
    return bytes((0x40, 2, pid >> 8, pid & 255))
