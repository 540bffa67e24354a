# Small asyncio MQTT 3.1.1 client for the gateway (MicroPython 1.29: ESP32 and the unix port).
#
# One connection per connect(): reconnecting and backoff belong to the supervisor (link.py), which
# awaits `client.dead` / wait_closed() and then calls connect() again. QoS 0 and 1 both ways,
# retained, last will, persistent sessions, keepalive. asyncio streams only, a timeout on every
# wait on the broker, never a blocking socket call.
#
# Inbound messages queue up for on_message(topic, payload, retained), called one at a time in
# arrival order outside the reader, so a handler may itself publish at QoS 1 and await the PUBACK.
# A QoS 1 message is acked only after on_message returned (or its coroutine finished); an
# exception in on_message is printed and the message is still acked. `payload` is None for a
# message too big for MAX_IN or for the heap (it was skipped); otherwise it is the exact-size
# bytearray the message was read into (no second copy; json.loads and hashlib take it as is).
# A handler still running when the link dies is left to finish, never cancelled.
import asyncio
import gc
from time import ticks_diff, ticks_ms

# MQTTError.code: 1..5 CONNACK refusals, 0x80 SUBACK failure, and:
TIMEOUT = -1  # no answer in time (CONNACK, PUBACK, SUBACK, a write, keepalive)
DOWN = -2  # not connected, or the link was lost meanwhile
PROTO = -3  # the broker broke the protocol

MAX_IN = 131072  # bigger inbound payloads are skipped (and acked), never buffered
RETRIES = 2  # QoS 1 retransmissions (DUP) within publish()'s timeout
QUEUE = 4  # inbound messages waiting for on_message before the reader pauses
STALL_MS = 60000  # the reader gives up (closes the link) when on_message is stuck this long
PINGREQ, DISCONNECT = b"\xc0\x00", b"\xe0\x00"


class MQTTError(Exception):
    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code


# --- pure protocol helpers -----------------------------------------------------------------------


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


# --- the client ------------------------------------------------------------------------------------


class MQTTClient:
    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30,
                 will=None, on_message=None, clean_session=False):
        self.client_id, self.host, self.port, self.user, self.password = client_id, host, port, user, password
        self.keepalive, self.will, self.on_message, self.clean_session = keepalive, will, on_message, clean_session
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
        self.dead, self.error, self._q, self._qev = asyncio.Event(), None, [], asyncio.Event()
        t0, ack = ticks_ms(), bytearray(4)
        try:
            self._r, self._w = await asyncio.wait_for_ms(asyncio.open_connection(self.host, self.port), timeout_ms)
            try:
                self._w.s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
            except Exception:
                pass
            await self._send((connect_packet(self.client_id, self.keepalive, self.clean_session, self.will,
                                             self.user, self.password),), timeout_ms)
            await asyncio.wait_for_ms(self._fill(ack), max(1, timeout_ms - ticks_diff(ticks_ms(), t0)))
            if ack[0] != 0x20 or ack[1] != 2:
                raise MQTTError(PROTO, "no CONNACK")
            if ack[3]:
                raise MQTTError(ack[3], "connection refused")
        except BaseException as e:
            self.close()
            if isinstance(e, MQTTError) or not isinstance(e, Exception):
                raise
            raise MQTTError(TIMEOUT if isinstance(e, asyncio.TimeoutError) else DOWN, "connect: " + repr(e))
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
        except OSError as e:
            self._fail(e, w)
            raise MQTTError(DOWN, repr(e))

    async def _write(self, w, parts, st):
        async with self._lock:
            if w is not self._w:
                raise MQTTError(DOWN, "link closed")
            st[0] = 1
            for p in parts:
                w.write(p)
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

    async def _reader(self):
        try:
            while True:
                await self._fill(self._b1)
                first, n = self._b1[0], 0
                for i in range(5):
                    if i == 4:
                        raise MQTTError(PROTO, "remaining length")
                    await self._fill(self._b1)
                    n |= (self._b1[0] & 0x7F) << 7 * i
                    if not self._b1[0] & 0x80:
                        break
                if first & 0xF0 == 0x30:
                    await self._publish_in(first, n)
                    continue
                body = bytearray(n)
                await self._fill(body)
                kind = first & 0xF0
                if kind in (0x40, 0x90) and n >= 2:  # PUBACK, SUBACK; PINGRESP only refreshed last_rx
                    slot = self._pend.get(body[0] << 8 | body[1])
                    if slot:
                        slot[1] = body[2:] if kind == 0x90 else True
                        slot[0].set()
        except Exception as e:
            self._fail(e)

    async def _publish_in(self, first, n):
        qos, b2 = first >> 1 & 3, self._b2
        await self._fill(b2)
        topic = bytearray(b2[0] << 8 | b2[1])
        await self._fill(topic)
        pid = 0
        if qos:
            await self._fill(b2)
            pid = b2[0] << 8 | b2[1]
        plen = n - 2 - len(topic) - (2 if qos else 0)
        if plen < 0 or qos > 1:
            raise MQTTError(PROTO, "PUBLISH")
        payload = None
        if plen <= MAX_IN:
            if plen > 4096:
                gc.collect()
            try:
                payload = bytearray(plen)
            except MemoryError:  # no piece of heap that big: the handler hears of it (payload None)
                payload = None
        if payload is None:  # skip it in small bites and ack it, or it comes back forever
            self.dropped += 1
            scratch = bytearray(256)
            while plen:
                k = min(plen, 256)
                await self._fill(scratch, k)
                plen -= k
            if self.on_message is not None:
                self._q.append((topic.decode(), None, bool(first & 1), pid))
                self._qev.set()
                return
            return await self._send((puback(pid),)) if qos else None
        await self._fill(payload)
        if qos and first & 8:  # DUP: drop a copy of one we have handled (ack again) or still hold
            if pid in self._seen:
                return await self._send((puback(pid),))
            if any(m[3] == pid for m in self._q):
                return
        if len(self._q) >= QUEUE:  # on_message is behind: wait, and do not count it as broker silence
            self._stall, t0 = True, ticks_ms()
            try:
                while len(self._q) >= QUEUE:
                    if ticks_diff(ticks_ms(), t0) > STALL_MS:
                        raise MQTTError(TIMEOUT, "on_message stuck")
                    await asyncio.sleep_ms(20)
            finally:
                self._stall, self.last_rx = False, ticks_ms()
        self._q.append((topic.decode(), payload, bool(first & 1), pid))
        self._qev.set()

    async def _dispatch(self, w, q, ev, dead):
        while not dead.is_set():
            if not q:
                ev.clear()
                await ev.wait()  # close() sets it
                continue
            topic, payload, retained, pid = q[0]
            try:
                r = self.on_message(topic, payload, retained) if self.on_message else None
                if hasattr(r, "send"):
                    await r
            except Exception as e:
                print("mqtt: on_message failed:", repr(e))
            q.pop(0)
            if len(payload) > 4096:
                topic = payload = r = None
                gc.collect()
            if pid and not dead.is_set():
                self._seen = self._seen[-7:] + [pid]
                try:
                    await self._send((puback(pid),), 5000, w)
                except MQTTError:
                    return

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
