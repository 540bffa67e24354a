"""FXO line driver: an analog exchange line on the same interface as gsm.py.

The FXO daughterboard (ring detector, caller-id FSK decoder, hook relay,
DTMF generator and decoder, polarity-reversal and busy-tone detectors) is
reached through a small line protocol on a UART, the way the board's FXO
module firmware speaks it:

    board -> module:  HOOK OFF | HOOK ON | DIAL <digits> | PING
    module -> board:  OK | ERR <why> | RING | CID <number> | ANSWERED (polarity reversal)
                      | BUSYTONE | LOOP OFF (loop current dropped: far end released) | DTMF <d>

Anything else is garbage: logged, counted and skipped.
"""

import asyncio

CID_WAIT_MS = 1500
RING_GONE_MS = 7000  # analog ringing cadence is ~5 s: no RING for this long = caller gave up
INTERNATIONAL_PREFIX = "00"  # what an analog line dials for the "+" of an E.164 number


class FxoLine:
    kind = "fxo"

    def __init__(self, name, reader, writer, log=print):
        self.name = name
        self.reader = reader
        self.writer = writer
        self.log = log
        self.listener = None
        self.ready = False
        self.garbage = 0
        self._reply = None  # the pending command's Event
        self._answer = None
        self._lock = asyncio.Lock()
        self._state = "idle"  # idle | ringing | talking | dialling
        self._ring_seen = False
        self._cid = None
        self._dial_result = None
        self._dial_event = asyncio.Event()
        self._reader_task = None

    def status(self):
        return {"kind": "fxo", "ready": self.ready, "calls": 0 if self._state == "idle" else 1,
                "garbage": self.garbage}

    def _emit(self, event, arg=None):
        if self.listener is not None:
            self.listener(self, event, arg)

    async def start(self):
        self._reader_task = asyncio.create_task(self._read())
        while True:
            try:
                await self._cmd("HOOK ON")
                self.ready = True
                return
            except Exception as e:
                self.log("fxo %s: module not answering (%r), retrying" % (self.name, e))
                self._emit("alarm", ("fxo_unresponsive", repr(e)))
                await asyncio.sleep(5)

    async def _cmd(self, text, timeout_ms=2000):
        async with self._lock:
            self._reply = asyncio.Event()
            self._answer = None
            self.writer.write((text + "\r\n").encode())
            await self.writer.drain()
            await asyncio.wait_for_ms(self._reply.wait(), timeout_ms)
            if self._answer != "OK":
                raise OSError("fxo %s: %s -> %s" % (self.name, text, self._answer))

    async def _read(self):
        while True:
            raw = await self.reader.readline()
            if not raw:
                await asyncio.sleep_ms(50)
                continue
            try:
                line = raw.decode().strip()
            except Exception:
                line = None
            if line is None or not self._route(line):
                if line != "":
                    self.garbage += 1
                    self.log("fxo %s: skipped %r" % (self.name, raw[:40]))

    def _route(self, line):
        """Dispatch one line from the module; False when it means nothing."""
        if line == "OK" or line.startswith("ERR"):
            if self._reply is not None:
                self._answer = line
                self._reply.set()
            return True
        if line == "RING":
            if self._state == "idle":
                self._state = "ringing"
                self._cid = None
                asyncio.create_task(self._announce())
            self._ring_seen = True
            return True
        if line.startswith("CID "):
            self._cid = line[4:].strip() or None
            return True
        if line == "ANSWERED" or line == "BUSYTONE":
            if self._state == "dialling":
                self._dial_result = "answered" if line == "ANSWERED" else "busy"
                self._dial_event.set()
            return True
        if line == "LOOP OFF":
            if self._state == "dialling":
                self._dial_result = "failed"
                self._dial_event.set()
            elif self._state in ("talking", "ringing"):
                self._state = "idle"
                self._emit("hangup")
            return True
        if line.startswith("DTMF "):
            self._emit("dtmf", line[5:6])
            return True
        return False

    async def _announce(self):
        """Emit `ring` once caller id arrived (or after a short wait), then watch for the caller giving up."""
        waited = 0
        while self._cid is None and waited < CID_WAIT_MS:
            await asyncio.sleep_ms(50)
            waited += 50
        self._emit("ring", self._cid)
        while self._state == "ringing":
            self._ring_seen = False
            await asyncio.sleep_ms(RING_GONE_MS)
            if self._state == "ringing" and not self._ring_seen:
                self._state = "idle"
                self._emit("hangup")

    async def answer(self):
        if self._state != "ringing":
            return False
        try:
            await self._cmd("HOOK OFF")
        except Exception as e:
            self.log("fxo %s: answer failed %r" % (self.name, e))
            return False
        self._state = "talking"
        return True

    async def hangup(self):
        if self._state == "idle":
            return
        self._state = "idle"
        try:
            await self._cmd("HOOK ON")
        except Exception as e:
            self.log("fxo %s: hangup failed %r" % (self.name, e))

    async def dial(self, number, ring_timeout_s):
        if not _dialable(number) or self._state != "idle":
            return "failed"
        self._state = "dialling"
        self._dial_result = None
        self._dial_event = asyncio.Event()
        try:
            await self._cmd("HOOK OFF")
            digits = INTERNATIONAL_PREFIX + number[1:] if number.startswith("+") else number
            await self._cmd("DIAL " + digits, timeout_ms=2000 + 100 * len(digits))
            await asyncio.wait_for(self._dial_event.wait(), ring_timeout_s)
            result = self._dial_result
        except asyncio.TimeoutError:
            result = "no_answer"
        except asyncio.CancelledError:
            await self.hangup()
            raise
        except Exception as e:
            self.log("fxo %s: dial failed %r" % (self.name, e))
            result = "failed"
        if result == "answered":
            self._state = "talking"
        else:
            await self.hangup()
        return result


def _dialable(number):
    digits = number[1:] if number.startswith("+") else number
    return 2 <= len(digits) <= 15 and all("0" <= c <= "9" for c in digits)
