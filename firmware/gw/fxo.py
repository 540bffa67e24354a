"""FXO line driver: an analog exchange line on the same interface as gsm.py.

The FXO daughterboard (ring detector, caller-id FSK decoder, hook relay,
DTMF generator and decoder, polarity-reversal and busy-tone detectors) is
reached through a small line protocol on a UART, the way the board's FXO
module firmware speaks it:

    board -> module:  HOOK OFF | HOOK ON | DIAL <digits> | PING
    module -> board:  OK | ERR <why> | RING | CID <number> | ANSWERED (polarity reversal)
                      | BUSYTONE | LOOP OFF (loop current dropped: far end released) | DTMF <d>

Lines end with CR LF. Anything else is garbage: logged, counted and skipped
(a clean tail glued after noise is still read).

An analog call cannot be refused: `hangup()` while it rings only stops the
driver from reporting it again, until its RINGs stop. The hook relay stays
where the driver put it when the far end releases (LOOP OFF): `hangup()` puts
it back on hook.
"""

import asyncio
import time

from gw.uartlines import read_lines

INTERNATIONAL_PREFIX = "00"  # what an analog line dials for the "+" of an E.164 number
IDLE, RINGING, TALKING, DIALLING, IGNORING = "idle", "ringing", "talking", "dialling", "ignoring"


class FxoLine:
    kind = "fxo"
    cmd_ms = 2000  # one command exchange (DIAL: plus 100 ms a digit)
    cid_wait_ms = 1500  # caller id comes after the first RING: wait this long for it
    ring_gone_ms = 7000  # analog ringing cadence is ~5 s: no RING for this long = caller gave up
    retry_ms = 5000  # start(): retry step while the module does not answer

    def __init__(self, name, reader, writer, log=print):
        self.name = name
        self.reader = reader
        self.writer = writer
        self.log = log
        self.listener = None
        self.ready = False
        self.garbage = 0
        self._lock = asyncio.Lock()
        self._reply = asyncio.Event()
        self._answer = None  # OK / ERR ... of the pending command
        self._pending = False
        self._state = IDLE
        self._off_hook = False  # where the hook relay may be (set before HOOK OFF, cleared before HOOK ON)
        self._gen = 0  # bumped per inbound call and per release: a stale ring watcher stops
        self._cid = None
        self._rung = False  # "ring" reported for the current inbound call
        self._ring_t = 0  # ticks of the last RING
        self._dial_result = None
        self._dial_event = asyncio.Event()
        self._reader_task = None

    def status(self):
        return {"kind": "fxo", "ready": self.ready, "calls": 0 if self._state == IDLE else 1,
                "garbage": self.garbage}

    def _emit(self, event, arg=None):
        if self.listener is None:
            return
        try:
            self.listener(self, event, arg)
        except Exception as e:  # a bug in the listener must not stop the reader
            self.log("fxo %s: listener %s: %r" % (self.name, event, e))

    async def start(self):
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self._read())
        alarmed = False
        while True:
            try:
                self._off_hook = True  # unknown after a restart: put it on hook
                await self._hook_on(raise_=True)
                self.ready = True
                self.log("fxo %s: ready" % self.name)
                if alarmed:
                    self._emit("alarm", ("fxo_recovered", self.name))
                return
            except Exception as e:
                self.log("fxo %s: module not answering (%r), retrying" % (self.name, e))
                if not alarmed:  # once per outage, not every retry
                    alarmed = True
                    self._emit("alarm", ("fxo_unresponsive", repr(e)))
                await asyncio.sleep_ms(self.retry_ms)

    async def _cmd(self, text, timeout_ms=None):
        async with self._lock:
            self._reply.clear()
            self._answer = None
            self._pending = True
            try:
                self.writer.write((text + "\r\n").encode())
                await self.writer.drain()
                await asyncio.wait_for_ms(self._reply.wait(), timeout_ms or self.cmd_ms)
            finally:
                self._pending = False
            if self._answer != "OK":
                raise OSError("fxo %s: %s -> %s" % (self.name, text, self._answer))

    async def _hook_on(self, raise_=False):
        if not self._off_hook:
            return
        self._off_hook = False
        try:
            await self._cmd("HOOK ON")
        except Exception as e:
            self._off_hook = True
            if raise_:
                raise
            self.log("fxo %s: HOOK ON failed %r" % (self.name, e))

    async def _read(self):
        await read_lines(self.reader, self._line, self._junk, self.log, "fxo " + self.name, size=80, idle_ms=50)

    def _line(self, text, clean):
        text = text.strip()
        if text and not self._route(text):
            self._junk(text.encode())

    def _junk(self, raw):
        self.garbage += 1
        if self.garbage <= 3 or self.garbage % 100 == 0:
            self.log("fxo %s: skipped %r (%d so far)" % (self.name, raw[:40], self.garbage))

    def _route(self, line):
        """Dispatch one line from the module; False when it means nothing."""
        if line == "OK" or line.startswith("ERR"):
            if self._pending:
                self._answer = line
                self._reply.set()
            return True
        if line == "RING":
            self._ring()
        elif line.startswith("CID "):
            if self._state == RINGING:
                self._cid = line[4:].strip() or None
        elif line == "ANSWERED":
            self._dial_done("answered")
        elif line == "BUSYTONE":
            if self._state == TALKING:  # exchanges without disconnect supervision play busy tone
                self._ended("busy tone")
            self._dial_done("busy")
        elif line == "LOOP OFF":
            if self._state in (TALKING, RINGING):
                self._ended("loop off")
            self._dial_done("failed")
        elif line.startswith("DTMF ") and len(line) == 6:
            if self._state == TALKING:
                self._emit("dtmf", line[5])
        else:
            return False
        return True

    def _ring(self):
        self._ring_t = time.ticks_ms()
        if self._state == IDLE and not self._off_hook:
            self._state, self._cid, self._rung, self._gen = RINGING, None, False, self._gen + 1
            asyncio.create_task(self._ring_watch(self._gen, self._ring_t))

    async def _ring_watch(self, gen, t0):
        """Report the call once caller id arrived (or after a short wait), then notice the RINGs stopping."""
        while self._gen == gen and self._state in (RINGING, IGNORING):
            now = time.ticks_ms()
            if self._state == RINGING and not self._rung and (
                    self._cid or time.ticks_diff(now, t0) >= self.cid_wait_ms):
                self._rung = True
                self._emit("ring", self._cid)
            elif time.ticks_diff(now, self._ring_t) > self.ring_gone_ms:
                self._ended("rings stopped")
            await asyncio.sleep_ms(250 if self._rung else 50)

    def _ended(self, why):
        """The current call is over from the far side: report it (an ignored call ends silently)."""
        st = self._state
        self._state, self._gen = IDLE, self._gen + 1
        if st == IGNORING:
            return
        self.log("fxo %s: call ended: %s" % (self.name, why))
        if st == RINGING and not self._rung:
            self._emit("ring", self._cid)  # every inbound call is reported, even a very short one
        self._emit("hangup")

    def _dial_done(self, result):
        if self._state == DIALLING and self._dial_result is None:
            self._dial_result = result
            if result == "answered":
                self._state = TALKING
            self._dial_event.set()

    async def answer(self):
        if self._state != RINGING:
            return False
        gen = self._gen
        try:
            self._off_hook = True
            await self._cmd("HOOK OFF")
        except Exception as e:
            self.log("fxo %s: answer failed %r" % (self.name, e))
            return False  # hangup() puts the hook back
        if self._gen != gen or self._state != RINGING:  # the caller left meanwhile ("hangup" sent)
            await self._hook_on()
            return False
        self._state = TALKING
        return True

    async def hangup(self):
        self._dial_done("failed")  # a dial() in progress returns and releases its attempt
        if self._state == RINGING:
            self._state = IGNORING  # it rings on until the caller gives up: not a new call
        elif self._state != IGNORING:
            self._state, self._gen = IDLE, self._gen + 1
        await self._hook_on()

    async def dial(self, number, ring_timeout_s):
        if not _dialable(number) or self._state != IDLE or not self.ready:
            return "failed"
        self._state, self._dial_result, self._gen = DIALLING, None, self._gen + 1
        self._dial_event.clear()
        t0, result = time.ticks_ms(), None
        digits = INTERNATIONAL_PREFIX + number[1:] if number.startswith("+") else number
        try:
            try:
                await self._hook_on(raise_=True)  # a fresh seizure (the last call may have left it off hook)
                self._off_hook = True
                await self._cmd("HOOK OFF")
                await self._cmd("DIAL " + digits, self.cmd_ms + 100 * len(digits))
            except Exception as e:
                self.log("fxo %s: dial failed %r" % (self.name, e))
                self._dial_done("failed")
            left = int(ring_timeout_s * 1000) - time.ticks_diff(time.ticks_ms(), t0)
            try:
                await asyncio.wait_for_ms(self._dial_event.wait(), max(0, left))
            except asyncio.TimeoutError:
                pass
            result = self._dial_result or "no_answer"  # nothing within the ring timeout: ours
            return result
        finally:
            if result != "answered":  # release the attempt; when cancelled, from a task of its own
                if self._state == DIALLING:
                    self._state, self._gen = IDLE, self._gen + 1
                if result is None:
                    asyncio.create_task(self._hook_on())
                else:
                    await self._hook_on()


def _dialable(number):
    digits = number[1:] if number.startswith("+") else number
    return 2 <= len(digits) <= 15 and all("0" <= c <= "9" for c in digits)
