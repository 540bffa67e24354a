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

The module decodes DTMF but has no audio player: menus (gw.menu) are not played on
an FXO line; such a call takes the menu's default option (logged) and is answered late.

An analog call cannot be refused: `hangup()` while it rings only stops the
driver from reporting it again, until its RINGs stop. The hook relay stays
where the driver put it when the far end releases (LOOP OFF): `hangup()` puts
it back on hook.

Health: once started, an idle line is PINGed every `ping_ms` (sooner, `retry_ms`, after a miss).
`fail_limit` commands in a row without an answer (PING or any other) while no call is on the line:
the module hangs. The line goes down (`ready` False: no calls), "fxo_unresponsive" is raised, the
board's reset for the port (`reset_hook`) is pulsed, and the line is set up again; "fxo_recovered"
when it answers. A line with a call in progress is never pinged nor reset.
"""

import asyncio
import time

from gw.line import DIALLING, IDLE, IGNORING, IN_CALL, OUT_CALL, RINGING, TALKING, LineDriver, wait_event

INTERNATIONAL_PREFIX = "00"  # what an analog line dials for the "+" of an E.164 number


class FxoLine(LineDriver):
    kind = "fxo"
    cmd_ms = 2000  # one command exchange (DIAL: plus 100 ms a digit)
    ring_gap_ms = 7000  # analog ringing cadence is ~5 s: no RING for this long = caller gave up
    rings_stopped = "rings stopped"
    retry_ms = 5000  # start(): retry step while the module does not answer; next PING after a missed one
    ping_ms, fail_limit, boot_ms = 30000, 3, 3000  # health PING period; misses in a row = hung; wait after reset
    line_size, idle_ms = 80, 50

    def __init__(self, name, reader, writer, clock=None, log=print, reset_hook=None):
        # reset_hook: coroutine function pulsing the module's reset (None: the board has none)
        super().__init__(name, reader, writer, clock, log, reset_hook, "fxo " + name)
        self._health = None
        self._lock = asyncio.Lock()
        self._reply = asyncio.Event()
        self._answer = None  # OK / ERR ... of the pending command
        self._pending = False
        self._off_hook = False  # where the hook relay may be (set before HOOK OFF, cleared before HOOK ON)
        self._reader_task = None

    async def start(self):
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self._read())
        await self._setup(False)
        if self._health is None:
            self._health = asyncio.create_task(self._supervise())

    async def _setup(self, alarmed):
        """Put the hook on until the module answers (resetting it every `fail_limit` misses); ready after."""
        tries = 0
        while True:
            try:
                self._off_hook = True  # unknown after a restart: put it on hook
                await self._hook_on(raise_=True)
                self.ready = True
                self.log("%s: ready" % self._tag)
                if alarmed:
                    self._emit("alarm", ("fxo_recovered", self.name))
                return
            except Exception as e:
                tries += 1
                self.log("%s: module not answering (%r), retrying" % (self._tag, e))
                if not alarmed:  # once per outage, not every retry
                    alarmed = True
                    self._emit("alarm", ("fxo_unresponsive", repr(e)))
                if self.reset_hook is not None and tries % self.fail_limit == 0:
                    await self._reset()
                else:
                    await asyncio.sleep_ms(self.retry_ms)

    async def _supervise(self):
        """PING an idle line; a run of unanswered commands with no call on the line: down, reset, set up."""
        while True:
            await asyncio.sleep_ms(self.retry_ms if self.timeouts else self.ping_ms)
            if self._st != IDLE or not self.ready:
                continue  # never in the middle of a call
            try:
                await self._cmd("PING")
            except Exception as e:
                self.log("%s: PING: %r" % (self._tag, e))
            if self.timeouts >= self.fail_limit and self._st == IDLE:
                self.ready = False
                self.log("%s: module hung (%d commands unanswered), resetting" % (self._tag, self.timeouts))
                self._emit("alarm", ("fxo_unresponsive", "%d commands unanswered" % self.timeouts))
                await self._reset()
                await self._setup(True)

    async def _reset(self):
        self._off_hook = True  # the relay is unknown until set up again: no RING is taken for a call meanwhile
        if self.reset_hook is None:
            self.log("%s: no reset line for the module" % self._tag)
            return
        try:
            await self.reset_hook()
        except Exception as e:
            self.log("%s: reset: %r" % (self._tag, e))
        await asyncio.sleep_ms(self.boot_ms)

    async def _cmd(self, text, timeout_ms=None):
        async with self._lock:
            self._reply.clear()
            self._answer = None
            self._pending = True
            try:
                self._w.write((text + "\r\n").encode())
                await self._w.drain()
                await asyncio.wait_for_ms(self._reply.wait(), timeout_ms or self.cmd_ms)
            except asyncio.TimeoutError:
                self.timeouts += 1
                raise
            finally:
                self._pending = False
            self.timeouts = 0
            if self._answer != "OK":
                raise OSError("%s: %s -> %s" % (self._tag, text, self._answer))

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
            self.log("%s: HOOK ON failed %r" % (self._tag, e))

    def _line(self, text, clean):
        text = text.strip()
        if text and not self._route(text):
            self._junk(text.encode())

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
            if self._st == RINGING:
                self._num = line[4:].strip() or None  # reported at the ring watch's next look
        elif line == "ANSWERED":
            self._dial_done("answered")
        elif line == "BUSYTONE":
            if self._st in TALKING:  # exchanges without disconnect supervision play busy tone
                self._ended("busy tone")
            self._dial_done("busy")
        elif line == "LOOP OFF":
            if self._st in TALKING or self._st == RINGING:
                self._ended("loop off")
            self._dial_done("failed")
        elif line.startswith("DTMF ") and len(line) == 6:
            if self._st in TALKING:
                self._emit("dtmf", line[5])
        else:
            return False
        return True

    def _ring(self):
        self._ring_t = now = self._ms()
        if self._st == IDLE and not self._off_hook:
            self._ring_start(now)

    def _dial_done(self, result):  # the first result wins
        if self._st == DIALLING and self._dial_result is None:
            self._dial_result = result
            if result == "answered":
                self._st = OUT_CALL
            self._dial_event.set()

    async def answer(self):
        if self._st != RINGING:
            return False
        gen = self._gen
        try:
            self._off_hook = True
            await self._cmd("HOOK OFF")
        except Exception as e:
            self.log("%s: answer failed %r" % (self._tag, e))
            return False  # hangup() puts the hook back
        if self._gen != gen or self._st != RINGING:  # the caller left meanwhile ("hangup" sent)
            await self._hook_on()
            return False
        self._st = IN_CALL
        return True

    async def hangup(self):
        self._dial_done("failed")  # a dial() in progress returns and releases its attempt
        if self._st == RINGING:
            self._st = IGNORING  # it rings on until the caller gives up: not a new call
        elif self._st != IGNORING:
            self._st, self._gen = IDLE, self._gen + 1
        await self._hook_on()

    async def dial(self, number, ring_timeout_s):
        if not _dialable(number) or self._st != IDLE or not self.ready:
            return "failed"
        self._st, self._dial_result, self._gen = DIALLING, None, self._gen + 1
        self._dial_event.clear()
        t0, result = self._ms(), None
        digits = INTERNATIONAL_PREFIX + number[1:] if number.startswith("+") else number
        try:
            try:
                await self._hook_on(raise_=True)  # a fresh seizure (the last call may have left it off hook)
                self._off_hook = True
                await self._cmd("HOOK OFF")
                await self._cmd("DIAL " + digits, self.cmd_ms + 100 * len(digits))
            except Exception as e:
                self.log("%s: dial failed %r" % (self._tag, e))
                self._dial_done("failed")
            await wait_event(self._dial_event, int(ring_timeout_s * 1000) - time.ticks_diff(self._ms(), t0))
            result = self._dial_result or "no_answer"  # nothing within the ring timeout: ours
            return result
        finally:
            if result != "answered":  # release the attempt; when cancelled, from a task of its own
                if self._st == DIALLING:
                    self._st, self._gen = IDLE, self._gen + 1
                if result is None:
                    asyncio.create_task(self._hook_on())
                else:
                    await self._hook_on()


def _dialable(number):
    digits = number[1:] if number.startswith("+") else number
    return 2 <= len(digits) <= 15 and all("0" <= c <= "9" for c in digits)
