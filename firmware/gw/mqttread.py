# The reading half of gw.mqtt.MQTTClient: packets off the socket, inbound PUBLISHes queued (or streamed
# to a sink) and handed to on_message one at a time, QoS 1 acked after the handler. A mixin, so both
# halves share one object's state without a second copy of it; gw.mqtt describes the contract.
import asyncio
import gc
from time import ticks_diff, ticks_ms

from gw.mqttwire import PROTO, TIMEOUT, MQTTError, puback

MAX_IN = 131072  # bigger inbound payloads are skipped (and acked), never buffered
QUEUE = 4  # inbound messages waiting for on_message before the reader pauses
STALL_MS = 60000  # the reader gives up (closes the link) when on_message is stuck this long
PIECE = 512  # streamed and skipped payloads are read this much at a time


class Inbound:
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
        try:
            topic = topic.decode()
        except Exception:  # not UTF-8: no topic of ours; skipped and acked below
            topic = ""
        payload = None
        sink = self._sink(topic, plen, bool(first & 1)) if self.on_stream is not None else None
        if sink is not None:
            await self._stream(sink, plen)
            payload, plen = sink, 0
        elif plen <= MAX_IN:
            if plen > 4096:
                gc.collect()
            try:
                payload = bytearray(plen)
            except MemoryError:  # no piece of heap that big: the handler hears of it (payload None)
                payload = None
        if payload is None:  # skip it in small bites and ack it, or it comes back forever
            self.dropped += 1
            scratch = bytearray(PIECE)
            while plen:
                k = min(plen, PIECE)
                await self._fill(scratch, k)
                plen -= k
            if self.on_message is not None:
                self._q.append((topic, None, bool(first & 1), pid))
                self._qev.set()
                return
            return await self._send((puback(pid),)) if qos else None
        if sink is None:
            await self._fill(payload)
        if qos and first & 8:  # DUP: drop a copy of one we have handled (ack again) or still hold
            if pid in self._seen or any(m[3] == pid for m in self._q):
                if sink is not None:
                    sink.abort()
                if pid in self._seen:
                    return await self._send((puback(pid),))
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
        self._q.append((topic, payload, bool(first & 1), pid))
        self._qev.set()

    def _sink(self, topic, plen, retained):
        try:
            return self.on_stream(topic, plen, retained)
        except Exception as e:  # the message is then read (or skipped) as any other
            print("mqtt: on_stream failed:", repr(e))
            return None

    async def _stream(self, sink, plen):
        """Feed the payload to the sink piece by piece; a sink that fails is told and drained."""
        buf, ok = bytearray(PIECE), True
        try:
            while plen:
                k = min(plen, PIECE)
                await self._fill(buf, k)
                plen -= k
                if ok:
                    try:
                        sink.write(buf, k)
                    except Exception as e:
                        ok = False
                        sink.fail(e)
            if ok:
                sink.end()
        except BaseException:  # the link died in mid-message: the sink lets go of what it holds
            sink.abort()
            raise

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
            if type(payload) is not bytearray or len(payload) > 4096:  # None, a sink, or big
                topic = payload = r = None
                gc.collect()
            if pid and not dead.is_set():
                self._seen = self._seen[-7:] + [pid]
                try:
                    await self._send((puback(pid),), 5000, w)
                except MQTTError:
                    return
