"""GSM line driver (SIM800 / SIM7600 AT dialect) with the line interface of firmware/README.md.

One reader task per UART splits bytes into lines and routes them: echo, final codes and info lines to
the pending `cmd()`, URCs to the call logic, garbage counted and skipped. A supervisor polls and resets.
"""

import asyncio
import time

from gw.line import DIALLING, IDLE, IN_CALL, OUT_CALL, RINGING, LineDriver, wait_event
from gw.nettime import parse_cclk, parse_nitz

_ERRORS = ("ERROR", "+CME ERROR", "+CMS ERROR")
_CALL_END = ("NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")
_QUIET = ("Call Ready", "SMS Ready", "+CPIN:", "+CFUN:", "SMS DONE", "PB DONE", "DST:", "+CTZV", "*PSNWID",
          "+CIEV", "MO RING", "MISSED_CALL", "+CMTI", "+CCWA", "NORMAL POWER DOWN", "OVER-VOLTAGE", "UNDER-VOLTAGE",
          "+AUDIOSTATE", "+CCMXPLAY:")
_INIT = (("ATE0", None), ("AT+CLIP=1", None), ("AT+CLCC=1", None), ("AT+CREG=1", None), ("AT+DDET=1", None),
         ("AT+CLTS=1", None), ("AT+CTZR=2", None), ("AT+CREG?", "+CREG:"), ("AT+CSQ", "+CSQ:"))


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


class GsmLine(LineDriver):
    kind = "gsm"
    # Timings in ms (with gw.line's caller_id_ms, ring_gap_ms, garbage window); tests shorten them before start().
    timeout_ms, call_cmd_ms = 2000, 6000  # one command exchange; ATD / ATA / ATH
    poll_ms, fail_limit = 30000, 3  # supervisor polls AT+CSQ, AT+CREG?; timeouts in a row -> unresponsive
    retry_ms, boot_ms = 5000, 5000  # back-off step while down (up to 60 s); wait after a reset (RDY ends it)
    garbage_alarm = "modem_garbage"

    def __init__(self, name, reader, writer, clock=None, log=print, reset_hook=None):
        # reset_hook: optional coroutine function that power-cycles the modem (else AT+CFUN=1,1)
        super().__init__(name, reader, writer, clock, log, reset_hook, name)
        self.reg, self.csq, self._tasks = None, None, None  # registration, signal; reader and supervisor
        self._lock, self._done, self._wake = asyncio.Lock(), asyncio.Event(), asyncio.Event()  # _wake: RDY
        # the command in progress: its text, the prefix of its info lines, its final result code, its info lines
        self._pending_cmd, self._pending_prefix, self._pending_final, self._pending_lines = None, None, None, []
        self._alarmed = False  # "modem_recovered" owed
        self.pdd_ms, self._atd_t0, self._stop_alert = None, 0, False  # post-dial delay; ATD sent at; a probe's dial
        self.sent_us, self.atd_us = 0, None  # time.ticks_us() after the last command's write; the last dial's ATD
        # commands holding or awaiting _lock (0: dial_now may take it at once); an ATD dial_now wrote, not yet
        # taken over by its dial() (a hang-up ends it if that dial never runs)
        self._users, self._sent_open = 0, False

    async def cmd(self, text, expect=None, timeout_ms=None, sent=False):
        """Send `text`, return its info lines starting with `expect` ("" = any non-URC line); ModemError.
        `sent`: dial_now() wrote it already and holds the lock: wait for its answer only."""
        if sent:
            self._sent_open = False
        else:
            self._users += 1
            try:
                await self._lock.acquire()
            except BaseException:  # cancelled while waiting for the lock
                self._users -= 1
                raise
        try:
            try:
                if not sent:
                    self._send(text, expect)
                await self._w.drain()
                await asyncio.wait_for_ms(self._done.wait(), timeout_ms or self.timeout_ms)
            except (asyncio.TimeoutError, OSError) as e:
                self.timeouts += 1
                raise ModemTimeout("%s: %r" % (text, e))
            finally:
                self._pending_cmd = None
            self.timeouts = 0
            if self._pending_final != "OK":
                raise ModemError("%s: %s" % (text, self._pending_final))
            return self._pending_lines
        finally:
            self._lock.release()
            self._users -= 1

    def _send(self, text, expect):  # the lock held
        self._pending_lines, self._pending_prefix, self._pending_final, self._pending_cmd = [], expect, None, text
        self._done.clear()
        self._w.write(text.encode() + b"\r")
        self.sent_us = time.ticks_us()

    async def _try(self, text, expect=None, timeout_ms=None, sent=False):  # cmd() that logs failures, returns None
        try:
            return await self.cmd(text, expect, timeout_ms, sent)
        except ModemError as e:
            self.log("%s: %s" % (self.name, e))


    def _line(self, text, clean):
        try:
            self._route(text, clean)
        except (ValueError, IndexError):  # a known prefix with a malformed or truncated body
            self._junk(text)

    def _route(self, text, clean):
        pc, exp, final = self._pending_cmd, self._pending_prefix, text == "OK" or text.startswith(_ERRORS)
        if pc is not None and text == pc:
            return  # echo (ATE1 is the default, e.g. right after a restart)
        if pc is not None and (final or text in _CALL_END and pc[:3] in ("ATD", "ATA")):
            self._pending_final = text  # NO CARRIER / BUSY end ATD / ATA and go to the call logic too
            self._done.set()
        if pc is not None and exp and text.startswith(exp):
            self._pending_lines.append(text)
            self._urc(text)  # +CREG / +CSQ / +CLCC answers update the trackers too
        elif self._urc(text) or final:  # (a final code without a command: a late answer after a timeout)
            return
        elif pc is not None and exp == "" and clean:
            self._pending_lines.append(text)  # expect "": any line (an IMEI ...)
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
        elif text == "MO RING":  # SIM800 with AT+MORING=1: the far end alerts
            self._alerting()
        elif text.startswith("+CSQ:"):
            self.csq = int(_fields(text)[0])
        elif text.startswith("+CREG:"):  # "+CREG: stat[,lac,ci]" (URC) or "+CREG: n,stat[,lac,ci]" (query)
            f = _fields(text)
            self.reg = int(f[1]) if len(f) > 1 and f[1][:1] != '"' else int(f[0])
        elif text.startswith("+DTMF:") or text.startswith("+RXDTMF:"):
            self._emit("dtmf", _fields(text)[0])
        elif text.startswith(("+CTTS:", "+CREC:")) or text == "+AUDIOSTATE: audio play stop":
            self._emit("played", text)  # a prompt ended (gw.menu)
        elif text.startswith(("*PSUTTZ:", "+CTZE:")):  # NITZ: the network's time (gw.nettime)
            t = parse_nitz(text)
            if t is not None:
                self._emit("time", t)
        elif text == "RDY":  # the modem (re)started: settings lost; unasked (brown-out, crash) while ready
            self._wake.set()
            if self.ready:
                self._down("modem_rebooted", self.name)
        else:
            return text.startswith(_QUIET)
        return True

    def _ring(self, number):  # RING / +CRING, and caller id (+CLIP, +CLCC), which comes soon after the first
        if self._pending_cmd == "ATH" and self._pending_final is None:
            return  # ATH sent, its OK not yet read: the call being released; a RING after that OK is a new call
        now = self._ms()
        if self._st == IDLE:
            self._ring_start(now)
        elif self._st != RINGING:
            return  # a waiting call while this line is busy: one call per line
        self._ring_t, self._num = now, self._num or number
        if self._num and not self._rung:  # caller id known: reported now, not at the ring watch's next look
            self._report_ring()

    def _clcc(self, f):
        idx, mt, stat, mode, mpty = [int(x) for x in f[:5]]  # ValueError when truncated
        if mt and stat in (4, 5):
            self._ring(_unq(f[5]) if len(f) > 5 else None)
        elif stat == 6 and self._st in ((RINGING, IN_CALL) if mt else (DIALLING, OUT_CALL)):
            self._ended("released")
        elif not mt and stat == 0:
            self._dial_done("answered")
        elif not mt and stat == 3:  # alerting (MO call), with AT+CLCC=1 (SIM800 and SIM7600 alike)
            self._alerting()

    def _alerting(self):  # the far end rings: the post-dial delay ends here; a probe stops here
        if self._st == DIALLING and self.pdd_ms is None:
            self.pdd_ms = time.ticks_diff(self._ms(), self._atd_t0)
            if self._stop_alert:
                self._dial_done("ringing")

    def _dial_done(self, res):
        if self._st == DIALLING:
            if self._dial_result in (None, "failed"):  # BUSY / NO ANSWER say more than NO CARRIER / +CLCC stat 6
                self._dial_result = res
            self._st = OUT_CALL if res == "answered" else DIALLING
            self._dial_event.set()

    def _ended(self, why):
        if self._st == DIALLING or self._st == IDLE:  # a call-end code ends a dial (_dial_done ignores an idle line)
            return self._dial_done({"BUSY": "busy", "NO ANSWER": "no_answer"}.get(why, "failed"))
        LineDriver._ended(self, why)

    async def answer(self):
        if self._st != RINGING or await self._try("ATA", None, self.call_cmd_ms) is None or self._st != RINGING:
            return False  # not ringing, or the caller left meanwhile ("hangup" already sent)
        self._st = IN_CALL
        return True

    async def hangup(self):
        if self._sent_open:  # dial_now's ATD whose dial() never ran: no answer awaited, the lock given back
            self._sent_open, self._pending_cmd, self._st = False, None, IDLE
            self._users -= 1
            self._lock.release()
        if self._st != DIALLING:
            self._st, self._gen = IDLE, self._gen + 1
        self._dial_done("failed")  # a dial() in progress returns and releases its attempt
        await self._ath(self._gen)

    async def _ath(self, gen):
        if gen == self._gen:  # else a newer call overtook this deferred release
            await self._try("ATH", None, self.call_cmd_ms)

    def _dial_setup(self, number, until_alerting):  # False: cannot dial now
        if not _dialable(number) or self._st != IDLE or not self.ready:
            return False
        self._st, self._dial_result, self._gen = DIALLING, None, self._gen + 1
        self._dial_event.clear()
        self.pdd_ms, self._atd_t0, self._stop_alert, self.atd_us, self.sent_us = None, self._ms(), until_alerting, \
            None, None
        return True

    def dial_now(self, number):
        """Write `ATD<number>;` at once, from the caller's task (the call machine's, on the +CLIP: no task switch
        before it), if the line can dial and no command holds or awaits the UART; True if written, then
        `dial(number, ring_timeout_s, started=True)` follows it (or `hangup()` ends it)."""
        if self._users or not self._dial_setup(number, False):
            return False
        acquiring = self._lock.acquire()  # free (no user): done at its first step, without yielding
        try:
            acquiring.send(None)
        except StopIteration:
            pass
        self._users, self._sent_open = 1, True
        try:
            self._send("ATD%s;" % number, None)
        except OSError:
            self._sent_open, self._pending_cmd, self._st = False, None, IDLE
            self._users -= 1
            self._lock.release()
            return False
        return True

    async def dial(self, number, ring_timeout_s, until_alerting=False, started=False):
        """-> answered | busy | no_answer | failed; `pdd_ms`: ATD to alerting (None: none seen). A probe's dial
        (`until_alerting`) ends "ringing" at alerting (then hung up), "unreachable" when released before it.
        `started`: dial_now(number) wrote the ATD."""
        if started and not self._sent_open:  # a hang-up ended it before this ran
            return "failed"
        if not started and not self._dial_setup(number, until_alerting):
            return "failed"
        res, t0 = None, self._atd_t0
        try:
            ok = await self._try("ATD%s;" % number, None, self.call_cmd_ms, started) is not None
            self.atd_us = self.sent_us  # None: the ATD was never written
            if not ok:
                self._dial_done("failed")
                until_alerting = False  # never dialled: our failure, not the number's
            await wait_event(self._dial_event, ring_timeout_s * 1000 - time.ticks_diff(self._ms(), t0))
            if self._dial_result not in (None, "answered", "ringing"):
                await asyncio.sleep_ms(300)  # BUSY / NO ANSWER may follow +CLCC stat 6
            res = self._dial_result or "no_answer"  # no result within the ring timeout: ours
            if until_alerting and res == "failed":
                res = "unreachable"
            return res
        finally:
            if res != "answered":  # release the attempt; when cancelled, from a task of its own
                self._st, self._gen = IDLE, self._gen + 1
                await self._ath(self._gen) if res is not None else asyncio.create_task(self._ath(self._gen))

    async def start(self):
        if self._tasks is None:
            self._tasks = [asyncio.create_task(self._read())]
            self._tasks.append(asyncio.create_task(self._supervise(0 if await self._init() else 1)))

    async def _init(self):
        for _ in range(5):
            if await self._try("AT", None, min(self.timeout_ms, 1000)) is not None:
                break
        else:
            return False
        for c, expect in _INIT:  # an ERROR is tolerated (SIM7600: no DDET, CLTS; SIM800: no CTZR); a timeout is not
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
                await wait_event(self._wake, self.poll_ms)
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
                await wait_event(self._wake, self.boot_ms)  # RDY wakes us earlier
            if await self._init():
                tries = 0
                if self._alarmed:
                    self._alarmed = False
                    self._alarm("modem_recovered", self.name)
            else:
                self._down("modem_unresponsive", "no answer to init")
                tries += 1
                await wait_event(self._wake, min(self.retry_ms * tries, 60000))

    async def clock_query(self):  # network time (AT+CCLK?) as UTC seconds, or None
        lines = await self._try("AT+CCLK?", "+CCLK:")
        return parse_cclk(lines[0]) if lines else None

    def status(self):
        return {"kind": "gsm", "ready": self.ready, "reg": self.reg, "csq": self.csq,
                "calls": 0 if self._st == IDLE else 1, "garbage": self.garbage}
