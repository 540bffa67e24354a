# Small asyncio MQTT 3.1.1 client for the gateway (MicroPython 1.29: ESP32 and the unix port).
#
# One connection per connect(): reconnecting and backoff belong to the supervisor (link.py), which
# awaits `client.dead` / wait_closed() and then calls connect() again. QoS 0 and 1 both ways,
# retained, last will, persistent sessions, keepalive. asyncio streams only, a timeout on every
# wait on the broker, never a blocking socket call. TLS (mqtts://) when given an ssl context (gw.tls):
# the socket is wrapped before the first byte, the handshake runs inside the CONNECT's write, and a
# handshake that fails (the broker's certificate does not verify) is MQTTError(TLS) with mbedTLS's reason.
#
# Inbound messages queue up for on_message(topic, payload, retained), called one at a time in
# arrival order outside the reader, so a handler may itself publish at QoS 1 and await the PUBACK.
# A QoS 1 message is acked only after on_message returned (or its coroutine finished); an
# exception in on_message is printed and the message is still acked. `payload` is None for a
# message too big for MAX_IN or for the heap (it was skipped); otherwise it is the exact-size
# bytearray the message was read into (no second copy; json.loads and hashlib take it as is).
# Streaming: `on_stream(topic, length, retained)` is asked first for every inbound message; when it
# returns a sink, the payload goes to it in 512-byte pieces as it is read (`write(buf, n)`, then
# `end()`; `fail(exc)` if write raised, `abort()` when the link dies mid-message) and the sink is
# what on_message gets as `payload`: no buffer the size of the message is ever needed.
# A handler still running when the link dies is left to finish, never cancelled.
# Packets are made by gw.mqttwire; the reading half of the client is gw.mqttread.
import asyncio
import socket
from errno import EINPROGRESS
from time import ticks_diff, ticks_ms

from gw.mqttread import Inbound
from gw.mqttwire import (
    DISCONNECT,
    DOWN,
    PINGREQ,
    PROTO,
    TIMEOUT,
    TLS,
    MQTTError,
    connect_packet,
    publish_header,
    subscribe_packet,
)

RETRIES = 2  # QoS 1 retransmissions (DUP) within publish()'s timeout
TLS_RECORD = 4096  # mbedTLS's outgoing record (OUT_CONTENT_LEN, unix and ESP32 builds): one write takes no more


def parse_url(url):
    """mqtt://host[:port] or mqtts://host[:port] -> (host, port, secure)."""
    if url.startswith("mqtts://"):
        secure, port, hostport = True, 8883, url[8:].split("/")[0]
    elif url.startswith("mqtt://"):
        secure, port, hostport = False, 1883, url[7:].split("/")[0]
    else:
        raise ValueError("broker must be mqtt://host:port or mqtts://host:port, got " + url[:80])
    host = hostport
    if ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        port = int(p)
    if not host or not 0 < port < 65536:
        raise ValueError("broker URL has no host or a bad port: " + url[:80])
    return host, port, secure


def _open(host, port, ctx):
    """A non-blocking TCP stream, wrapped in TLS when `ctx` is given (verified for `host`). Nothing here
    waits: the TCP connect completes, and the TLS handshake runs, inside the first write's drain."""
    ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]  # a name is looked up as asyncio's own does
    s = socket.socket(ai[0], ai[1], ai[2])
    try:
        s.setblocking(False)
        try:
            s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY: a small packet goes out at once
        except Exception:
            pass
        try:
            s.connect(ai[-1])
        except OSError as e:
            if e.errno != EINPROGRESS:
                raise
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        s.close()
        raise
    stream = asyncio.StreamWriter(s, {})
    return stream, stream


class MQTTClient(Inbound):
    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30,
                 will=None, on_message=None, clean_session=False, on_stream=None, ssl=None):
        self.client_id, self.host, self.port, self.user, self.password = client_id, host, port, user, password
        self.ssl = ssl  # an ssl.SSLContext (gw.tls.context): TLS, the certificate checked for `host`
        self.keepalive, self.will, self.on_message, self.clean_session = keepalive, will, on_message, clean_session
        self.on_stream = on_stream
        self._r = self._w = None
        self._up, self._stall, self._pid, self._tasks = False, False, 0, ()
        self._lock = asyncio.Lock()
        self._pend = {}  # packet id -> [Event, result]: PUBACK True, SUBACK codes, None = link lost
        self._q, self._qev = [], asyncio.Event()  # inbound (topic, payload, retained, pid)
        self._seen = []  # ids of QoS 1 messages handled lately: DUP redeliveries of them are dropped
        self._b1, self._b2 = bytearray(1), bytearray(2)
        self.dead = asyncio.Event()  # set while there is no connection
        self.dead.set()
        self.error = None  # why the last connection ended
        self.session_present = False
        self.dropped = 0  # oversize inbound messages skipped
        self.last_rx = self.last_tx = self._pinged = 0

    @property
    def connected(self):
        return self._up and self._w is not None

    async def connect(self, timeout_ms=10000):
        if self._w is not None:
            raise MQTTError(PROTO, "already connected")
        hello = connect_packet(self.client_id, self.keepalive, self.clean_session, self.will, self.user, self.password)
        self.dead, self.error, self._q, self._qev = asyncio.Event(), None, [], asyncio.Event()
        t0, ack = ticks_ms(), bytearray(4)
        try:
            self._r, self._w = _open(self.host, self.port, self.ssl)
            await self._send((hello,), timeout_ms)  # with TLS, the handshake runs in here
            del hello
            await asyncio.wait_for_ms(self._fill(ack), max(1, timeout_ms - ticks_diff(ticks_ms(), t0)))
            if ack[0] != 0x20 or ack[1] != 2:
                raise MQTTError(PROTO, "no CONNACK")
            if ack[3]:
                raise MQTTError(ack[3], "connection refused")
        except BaseException as e:
            self.close()
            if isinstance(e, MQTTError) or not isinstance(e, Exception):
                raise
            if isinstance(e, asyncio.TimeoutError):
                raise MQTTError(TIMEOUT, "connect: " + repr(e))
            raise self._down(e, "connect: ")
        self.session_present, self._up = bool(ack[2] & 1), True
        self.last_rx = self.last_tx = self._pinged = ticks_ms()
        self._tasks = (asyncio.create_task(self._reader()), asyncio.create_task(self._pinger()))
        asyncio.create_task(self._dispatch(self._w, self._q, self._qev, self.dead))

    async def publish(self, topic, payload, qos=0, retain=False, timeout_ms=5000):
        if not self.connected:
            raise MQTTError(DOWN, "not connected")
        payload = payload.encode() if isinstance(payload, str) else payload
        pid = self._newpid() if qos else 0
        hdr = publish_header(topic, len(payload), qos, retain, pid)
        parts = (hdr + payload,) if len(payload) <= 512 else (hdr, payload)  # small: one TCP segment
        if not qos:
            return await self._send(parts, timeout_ms)
        await self._acked(pid, parts, timeout_ms, RETRIES)

    async def subscribe(self, topic_filter, qos=1, timeout_ms=5000):
        """-> the granted QoS; MQTTError(0x80) when the broker refuses the filter."""
        if not self.connected:
            raise MQTTError(DOWN, "not connected")
        pid = self._newpid()
        codes = await self._acked(pid, (subscribe_packet(pid, topic_filter, qos),), timeout_ms)
        if not len(codes) or codes[0] & 0x80:
            raise MQTTError(0x80, "subscription refused: " + topic_filter)
        return codes[0]

    async def disconnect(self, timeout_ms=2000):
        """A clean DISCONNECT (the broker discards the will), then close()."""
        try:
            await self._send((DISCONNECT,), timeout_ms)
        except MQTTError:
            pass
        self.close()

    def close(self):
        """Drop the connection now, no DISCONNECT (the broker publishes the will). Idempotent."""
        w, self._w, self._up = self._w, None, False
        try:
            cur = asyncio.current_task()
        except Exception:
            cur = None
        for t in self._tasks:
            if t is not cur:
                t.cancel()  # before the socket closes, so nothing waits on a dead fd
        self._tasks = ()
        if w is not None:
            try:
                w.s.close()
            except Exception:
                pass
        for slot in self._pend.values():
            slot[0].set()
        self._qev.set()
        self.dead.set()

    async def wait_closed(self, timeout_ms=None):
        """Until the connection is gone; asyncio.TimeoutError after timeout_ms if given."""
        await (asyncio.wait_for_ms(self.dead.wait(), timeout_ms) if timeout_ms else self.dead.wait())

    # --- internals --------------------------------------------------------------------------------

    def _newpid(self):
        while True:
            self._pid = self._pid % 65535 + 1
            if self._pid not in self._pend:
                return self._pid

    async def _acked(self, pid, parts, timeout_ms, retries=0):
        """Send parts[0] (+ payload), await its ack by packet id, resend it with DUP `retries` times."""
        slot, t0 = [asyncio.Event(), None], ticks_ms()
        self._pend[pid] = slot
        try:
            for i in range(retries + 1):
                left = timeout_ms - ticks_diff(ticks_ms(), t0)
                if left <= 0:
                    break
                if i:
                    parts[0][0] |= 8  # DUP
                await self._send(parts, left)
                if await self._wait(slot, min(timeout_ms // (retries + 1), left)):
                    return slot[1]
            raise MQTTError(TIMEOUT, "no ack for packet %d" % pid)
        finally:
            self._pend.pop(pid, None)

    async def _wait(self, slot, ms):
        """True when acked, False on timeout, MQTTError when the link went down meanwhile."""
        try:
            await asyncio.wait_for_ms(slot[0].wait(), ms)
        except asyncio.TimeoutError:
            if self.connected:
                return False
        if slot[1] is None:
            raise MQTTError(DOWN, "link lost")
        return True

    async def _send(self, parts, timeout_ms=5000, w=None):
        """Write whole packets under the lock; a timeout in mid-packet or a socket error kills the link."""
        w, st = w or self._w, [0]
        if w is None:
            raise MQTTError(DOWN, "not connected")
        try:
            await asyncio.wait_for_ms(self._write(w, parts, st), timeout_ms)
        except asyncio.TimeoutError:
            if st[0]:
                self._fail(MQTTError(TIMEOUT, "write"), w)
            raise MQTTError(TIMEOUT, "write")
        except (OSError, ValueError) as e:  # ValueError: a certificate that did not verify (TLS)
            self._fail(e, w)
            raise self._down(e)

    def _down(self, e, what=""):
        """The MQTTError for a socket failure: TLS when the handshake or mbedTLS failed, else DOWN."""
        if self.ssl is not None:
            from gw import tls

            if tls.is_failure(e):
                return MQTTError(TLS, "tls: " + tls.why(e))
        return MQTTError(DOWN, what + repr(e))

    async def _write(self, w, parts, st):
        async with self._lock:
            if w is not self._w:
                raise MQTTError(DOWN, "link closed")
            st[0] = 1
            for p in parts:
                if self.ssl is None or len(p) <= TLS_RECORD:
                    w.write(p)
                    continue
                mv = memoryview(p)  # a record at a time: the stream copies what a write leaves over
                for i in range(0, len(p), TLS_RECORD):
                    w.write(mv[i:i + TLS_RECORD])
                    await w.drain()
            await w.drain()
            self.last_tx = ticks_ms()

    def _fail(self, err, w=None):
        if w is None or w is self._w:
            self.error = self.error or err
            self.close()

    async def _fill(self, buf, n=0):
        """Read exactly n (default len(buf)) bytes into buf."""
        mv, n, off = memoryview(buf), n or len(buf), 0
        while off < n:
            k = await self._r.readinto(mv[off:n])
            if k == 0:
                raise MQTTError(DOWN, "closed by broker")
            off += k or 0
            self.last_rx = ticks_ms()

    async def _pinger(self):
        """PINGREQ when idle for keepalive/2; the link is dead after keepalive*1.5 without any packet."""
        ka = self.keepalive * 1000
        while ka:
            await asyncio.sleep_ms(min(ka // 4, 1000))
            now, half = ticks_ms(), ka // 2
            if self._stall:
                self.last_rx = now
            elif ticks_diff(now, self.last_rx) > ka * 3 // 2:
                return self._fail(MQTTError(TIMEOUT, "keepalive: broker silent"))
            if ticks_diff(now, self.last_tx) >= half or (
                    ticks_diff(now, self.last_rx) >= half and ticks_diff(now, self._pinged) >= half):
                self._pinged = now
                try:
                    await self._send((PINGREQ,), ka)
                except MQTTError:  # a long write held the lock: fine; anything worse closed the link
                    if not self.connected:
                        return
