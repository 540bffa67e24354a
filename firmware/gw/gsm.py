"""GSM line driver (SIM800 / SIM7600 AT dialect) with the line interface of firmware/README.md.

One reader task per UART splits bytes into lines and routes them: echo, final codes and info lines to
the pending `cmd()`, URCs to the call logic, garbage counted and skipped. A supervisor polls and resets.
"""

import asyncio
import time

from gw.uartlines import read_lines
from protocols.tz import days_from_civil

IDLE, RINGING, IN_CALL, DIALING, OUT_CALL = 0, 1, 2, 3, 4
_ERRORS = ("ERROR", "+CME ERROR", "+CMS ERROR")
_CALL_END = ("NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")
_QUIET = ("Call Ready", "SMS Ready", "+CPIN:", "+CFUN:", "SMS DONE", "PB DONE", "*PSUTTZ", "DST:", "+CTZV",
          "+CIEV", "MO RING", "MISSED_CALL", "+CMTI", "+CCWA", "NORMAL POWER DOWN", "OVER-VOLTAGE", "UNDER-VOLTAGE")
_INIT = (("ATE0", None), ("AT+CLIP=1", None), ("AT+CLCC=1", None), ("AT+CREG=1", None), ("AT+DDET=1", None),
         ("AT+CLTS=1", None), ("AT+CREG?", "+CREG:"), ("AT+CSQ", "+CSQ:"))


class ModemError(Exception):
    pass


class ModemTimeout(ModemError):
    pass


def _fields(text):  # the comma-separated values after "PREFIX:" (quotes kept); ValueError when truncated
    body = text[text.index(":") + 1:]
    if body.count('"') % 2:
        raise ValueError("unterminated quote")
    return [f.strip() for f in body.split(",")]


def _unq(s):
    return s[1:-1] if len(s) >= 2 and s[0] == '"' and s[-1] == '"' else s


def _dialable(number):
    digits = number[1:] if isinstance(number, str) and number[:1] == "+" else number
    return isinstance(digits, str) and 0 < len(digits) <= 20 and digits.isdigit()


async def _wait(event, ms):  # wait for `event` at most `ms`, then clear it
    try:
        await asyncio.wait_for_ms(event.wait(), max(0, int(ms)))
    except asyncio.TimeoutError:
        pass
    event.clear()


def parse_cclk(text):
    """`+CCLK: "yy/MM/dd,hh:mm:ss±zz"` (local time, zz in quarter hours) -> UTC seconds, or None."""
    try:
        s = _unq(",".join(_fields(text)))
        k = max(s.rfind("+"), s.rfind("-"))
        yy, mo, dd, hh, mi, ss = [int(x) for x in s[:k].replace(",", "/").replace(":", "/").split("/")]
        zq = int(s[k:])
    except (ValueError, IndexError):
        return None
    if not (10 <= yy < 70 and 1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 61):
        return None  # 04/01/01 (SIM800), 80/01/06 (SIM7600): the modem never got network time
    return days_from_civil(2000 + yy, mo, dd) * 86400 + hh * 3600 + mi * 60 + ss - zq * 900


class GsmLine:
    kind = "gsm"
    # Timings in ms; tests shorten them on the instance before start().
    timeout_ms, call_cmd_ms = 2000, 6000  # one command exchange; ATD / ATA / ATH
    poll_ms, fail_limit = 30000, 3  # supervisor polls AT+CSQ, AT+CREG?; timeouts in a row -> unresponsive
    retry_ms, boot_ms = 5000, 5000  # back-off step while down (up to 60 s); wait after a reset (RDY ends it)
    caller_id_ms, ring_gap_ms = 1500, 6000  # wait for caller id after RING; RINGs stopped -> caller left
    garbage_limit, garbage_window_ms = 10, 10000  # that many bad lines that fast -> "modem_garbage"

    def __init__(self, name, reader, writer, clock=None, log=print, reset_hook=None):
        self.name, self._r, self._w, self.log = name, reader, writer, log
        self._ms = clock.ms if clock is not None else time.ticks_ms  # gw.clock.Clock or ticks_ms
        self.reset_hook = reset_hook  # optional coroutine function that power-cycles the modem
        self.listener, self.ready, self.reg, self.csq, self.garbage = None, False, None, None, 0
        self.timeouts, self._tasks = 0, None  # consecutive command timeouts; reader and supervisor
        self._lock, self._done, self._wake = asyncio.Lock(), asyncio.Event(), asyncio.Event()  # _wake: RDY
        self._pcmd, self._pexp, self._pres, self._plines = None, None, None, []  # pending command, prefix, final
        self._st, self._gen = IDLE, 0  # call state; generation, bumped per call and release
        self._num, self._rung, self._ring_t = None, False, 0  # inbound: caller, "ring" sent, last RING
        self._dres, self._cev = None, asyncio.Event()  # outcome of the dial in progress; its progress
        self._alarmed, self._g_t, self._g_n = False, 0, 0  # "modem_recovered" owed; garbage window start, lines

    async def cmd(self, text, expect=None, timeout_ms=None):
        """Send `text`, return its info lines starting with `expect` ("" = any non-URC line); ModemError."""
        async with self._lock:
            self._plines, self._pexp, self._pres, self._pcmd = [], expect, None, text
            self._done.clear()
            try:
                self._w.write(text.encode() + b"\r")
                await self._w.drain()
                await asyncio.wait_for_ms(self._done.wait(), timeout_ms or self.timeout_ms)
            except (asyncio.TimeoutError, OSError) as e:
                self.timeouts += 1
                raise ModemTimeout("%s: %r" % (text, e))
            finally:
                self._pcmd = None
            self.timeouts = 0
            if self._pres != "OK":
                raise ModemError("%s: %s" % (text, self._pres))
            return self._plines

    async def _try(self, text, expect=None, timeout_ms=None):  # cmd() that logs failures and returns None
        try:
            return await self.cmd(text, expect, timeout_ms)
        except ModemError as e:
            self.log("%s: %s" % (self.name, e))

    async def _read_loop(self):
        await read_lines(self._r, self._line, self._junk, self.log, self.name)

    def _line(self, text, clean):
        try:
            self._route(text, clean)
        except (ValueError, IndexError):  # a known prefix with a malformed or truncated body
            self._junk(text)

    def _route(self, text, clean):
        pc, exp, final = self._pcmd, self._pexp, text == "OK" or text.startswith(_ERRORS)
        if pc is not None and text == pc:
            return  # echo (ATE1 is the default, e.g. right after a restart)
        if pc is not None and (final or text in _CALL_END and pc[:3] in ("ATD", "ATA")):
            self._pres = text  # NO CARRIER / BUSY end ATD / ATA and go to the call logic too
            self._done.set()
        if pc is not None and exp and text.startswith(exp):
            self._plines.append(text)
            self._urc(text)  # +CREG / +CSQ / +CLCC answers update the trackers too
        elif self._urc(text) or final:  # (a final code without a command: a late answer after a timeout)
            return
        elif pc is not None and exp == "" and clean:
            self._plines.append(text)  # expect "": any line (an IMEI ...)
        elif clean and not text.startswith("AT"):  # an echo that lost its command is harmless
            self._junk(text)

    def _urc(self, text):
        if text == "RING" or text.startswith("+CRING"):
            self._ring(None)
        elif text.startswith("+CLIP:"):
            self._ring(_unq(_fields(text)[0]) or None)
        elif text.startswith("+CLCC:"):
            self._clcc(_fields(text))
        elif text in _CALL_END or text.startswith("VOICE CALL: END"):
            self._ended(text)
        elif text in ("MO CONNECTED", "VOICE CALL: BEGIN", "CONNECT"):
            self._dial_done("answered")
        elif text.startswith("+CSQ:"):
            self.csq = int(_fields(text)[0])
        elif text.startswith("+CREG:"):  # "+CREG: stat[,lac,ci]" (URC) or "+CREG: n,stat[,lac,ci]" (query)
            f = _fields(text)
            self.reg = int(f[1]) if len(f) > 1 and f[1][:1] != '"' else int(f[0])
        elif text.startswith("+DTMF:") or text.startswith("+RXDTMF:"):
            self._emit("dtmf", _fields(text)[0])
        elif text == "RDY":  # the modem (re)started: settings lost; unasked (brown-out, crash) while ready
            self._wake.set()
            if self.ready:
                self._down("modem_rebooted", self.name)
        else:
            return text.startswith(_QUIET)
        return True

    def _junk(self, what):
        self.garbage += 1
        now = self._ms()
        if time.ticks_diff(now, self._g_t) > self.garbage_window_ms:
            self._g_t, self._g_n = now, 0
        self._g_n += 1
        if self._g_n <= 3:
            self.log("%s: garbage %r" % (self.name, what))
        if self._g_n == self.garbage_limit:
            self._alarm("modem_garbage", "%d bad lines in %d s" % (self._g_n, self.garbage_window_ms // 1000))

    def _emit(self, event, arg):
        try:
            self.listener(self, event, arg)
        except Exception as e:  # no listener yet, or a bug in it: never break the reader
            self.log("%s: listener %s: %r" % (self.name, event, e))

    def _alarm(self, code, detail):
        self.log("%s: ALARM %s %s" % (self.name, code, detail))
        self._emit("alarm", (code, detail))

    def _ring(self, number):
        if self._st == IDLE:
            self._st, self._num, self._rung, self._gen = RINGING, None, False, self._gen + 1
            asyncio.create_task(self._ring_watch(self._gen, self._ms()))
        elif self._st != RINGING:
            return  # a waiting call while this line is busy: one call per line
        self._ring_t, self._num = self._ms(), self._num or number

    async def _ring_watch(self, gen, t0):
        while self._gen == gen and self._st == RINGING:
            now = self._ms()  # caller id (+CLIP / +CLCC) comes soon after the first RING
            if not self._rung and (self._num or time.ticks_diff(now, t0) >= self.caller_id_ms):
                self._rung = True
                self._emit("ring", self._num)
            elif time.ticks_diff(now, self._ring_t) > self.ring_gap_ms:
                self._ended("RINGs stopped")
            await asyncio.sleep_ms(250 if self._rung else 50)

    def _clcc(self, f):
        idx, mt, stat, mode, mpty = [int(x) for x in f[:5]]  # ValueError when truncated
        if mt and stat in (4, 5):
            self._ring(_unq(f[5]) if len(f) > 5 else None)
        elif stat == 6 and self._st in ((RINGING, IN_CALL) if mt else (DIALING, OUT_CALL)):
            self._ended("released")
        elif not mt and stat == 0:
            self._dial_done("answered")

    def _dial_done(self, res):
        if self._st == DIALING:
            if self._dres in (None, "failed"):  # BUSY / NO ANSWER say more than NO CARRIER / +CLCC stat 6
                self._dres = res
            self._st = OUT_CALL if res == "answered" else DIALING
            self._cev.set()

    def _ended(self, why):
        st = self._st
        if st == DIALING or st == IDLE:  # (_dial_done ignores an idle line)
            return self._dial_done({"BUSY": "busy", "NO ANSWER": "no_answer"}.get(why, "failed"))
        self._st, self._gen = IDLE, self._gen + 1
        self.log("%s: call ended: %s" % (self.name, why))
        if st == RINGING and not self._rung:
            self._rung = True
            self._emit("ring", self._num)  # every inbound call is reported, even a very short one
        self._emit("hangup", None)

    async def answer(self):
        if self._st != RINGING or await self._try("ATA", None, self.call_cmd_ms) is None or self._st != RINGING:
            return False  # not ringing, or the caller left meanwhile ("hangup" already sent)
        self._st = IN_CALL
        return True

    async def hangup(self):
        if self._st != DIALING:
            self._st, self._gen = IDLE, self._gen + 1
        self._dial_done("failed")  # a dial() in progress returns and releases its attempt
        await self._ath(self._gen)

    async def _ath(self, gen):
        if gen == self._gen:  # else a newer call overtook this deferred release
            await self._try("ATH", None, self.call_cmd_ms)

    async def dial(self, number, ring_timeout_s):
        if not _dialable(number) or self._st != IDLE or not self.ready:
            return "failed"
        self._st, self._dres, self._gen, res, t0 = DIALING, None, self._gen + 1, None, self._ms()
        self._cev.clear()
        try:
            if await self._try("ATD%s;" % number, None, self.call_cmd_ms) is None:
                self._dial_done("failed")
            await _wait(self._cev, ring_timeout_s * 1000 - time.ticks_diff(self._ms(), t0))  # set with _dres
            if self._dres not in (None, "answered"):
                await asyncio.sleep_ms(300)  # BUSY / NO ANSWER may follow +CLCC stat 6
            res = self._dres or "no_answer"  # no result within the ring timeout: ours
            return res
        finally:
            if res != "answered":  # release the attempt; when cancelled, from a task of its own
                self._st, self._gen = IDLE, self._gen + 1
                await self._ath(self._gen) if res is not None else asyncio.create_task(self._ath(self._gen))

    async def start(self):
        if self._tasks is None:
            self._tasks = [asyncio.create_task(self._read_loop())]
            self._tasks.append(asyncio.create_task(self._supervise(0 if await self._init() else 1)))

    async def _init(self):
        for _ in range(5):
            if await self._try("AT", None, min(self.timeout_ms, 1000)) is not None:
                break
        else:
            return False
        for c, expect in _INIT:  # an ERROR is tolerated (SIM7600: no DDET, no CLTS); a timeout is not
            if await self._try(c, expect) is None and self.timeouts:
                return False
        self.ready = True
        self.log("%s: ready (reg %s, csq %s)" % (self.name, self.reg, self.csq))
        return True

    def _down(self, code, detail):
        self.ready = False
        self._ended("modem down")
        if not self._alarmed:
            self._alarmed = True
            self._alarm(code, detail)

    async def _supervise(self, tries):
        while True:
            while self.ready:  # poll signal and registration; a run of timeouts: the modem hangs
                await _wait(self._wake, self.poll_ms)
                for c, expect in _INIT[-2:]:
                    if self.ready:
                        await self._try(c, expect)
                if self.ready and self.timeouts >= self.fail_limit:
                    self._down("modem_unresponsive", "%d commands unanswered" % self.timeouts)
                    tries = 1
            if tries:  # reset it (not when it restarted by itself)
                try:
                    await (self.reset_hook() if self.reset_hook else self.cmd("AT+CFUN=1,1"))
                except Exception as e:
                    self.log("%s: reset: %r" % (self.name, e))
                await _wait(self._wake, self.boot_ms)  # RDY wakes us earlier
            if await self._init():
                tries = 0
                if self._alarmed:
                    self._alarmed = False
                    self._alarm("modem_recovered", self.name)
            else:
                self._down("modem_unresponsive", "no answer to init")
                tries += 1
                await _wait(self._wake, min(self.retry_ms * tries, 60000))

    async def clock_query(self):  # network time (AT+CCLK?) as UTC seconds, or None
        lines = await self._try("AT+CCLK?", "+CCLK:")
        return parse_cclk(lines[0]) if lines else None

    def status(self):
        return {"kind": "gsm", "ready": self.ready, "reg": self.reg, "csq": self.csq,
                "calls": 0 if self._st == IDLE else 1, "garbage": self.garbage}
