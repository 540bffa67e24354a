"""What every line driver (gw.gsm, gw.fxo) does the same way, so each keeps only its dialect.

The listener and `_emit`, the inbound call from its first RING (reported once caller id arrived or after
`caller_id_ms`, over when the RINGs stop for `ring_gap_ms`), the end of a call from the far side, the
garbage count with its window, and one clock (`clock.ms`, else `time.ticks_ms`). The interface the call
machine sees is in firmware/README.md ("The line interface").
"""

import asyncio
import time

from gw.uartlines import read_lines

# Call states. IGNORING: an inbound call we hung up on that rings on (an analog call cannot be refused).
IDLE, RINGING, IN_CALL, DIALLING, OUT_CALL, IGNORING = 0, 1, 2, 3, 4, 5
TALKING = (IN_CALL, OUT_CALL)


async def wait_event(event, ms):
    """Wait for `event` at most `ms`, then clear it."""
    try:
        await asyncio.wait_for_ms(event.wait(), max(0, int(ms)))
    except asyncio.TimeoutError:
        pass
    event.clear()


class LineDriver:
    kind = None
    # Timings in ms; tests and the emulated board's rig shorten them on the instance before start().
    caller_id_ms, ring_gap_ms = 1500, 6000  # wait for caller id after the first RING; RINGs stopped -> caller left
    garbage_limit, garbage_window_ms = 10, 10000  # that many bad lines that fast -> `garbage_alarm`
    garbage_alarm = None  # the alarm's code (None: counted and logged only)
    rings_stopped = "RINGs stopped"  # why a call that stopped ringing ended, in the log
    line_size, idle_ms = 200, 100  # the UART reader's line buffer; its pause on a silent port (gw.uartlines)

    def __init__(self, name, reader, writer, clock, log, reset_hook, tag):
        self.name, self._r, self._w, self.log, self._tag = name, reader, writer, log, tag  # _tag starts log lines
        self._ms = clock.ms if clock is not None else time.ticks_ms  # gw.clock.Clock or ticks_ms
        self.reset_hook = reset_hook  # optional coroutine function that resets the device (a power cycle, a pin)
        self.listener, self.ready, self.garbage, self.timeouts = None, False, 0, 0  # timeouts: commands in a row
        self._st, self._gen = IDLE, 0  # call state; generation, bumped per call and release: a stale watch stops
        self._num, self._rung, self._ring_t = None, False, 0  # inbound: caller, "ring" sent, last RING
        self._dial_result, self._dial_event = None, asyncio.Event()  # the dial in progress: its outcome, set once known
        self._junk_t0, self._junk_n = 0, 0  # garbage window: its start, its bad lines
        self.ring_us = 0  # time.ticks_us() when the last call was reported (its +CLIP read): gw.calls' +CLIP -> ATD

    def status(self):
        return {"kind": self.kind, "ready": self.ready, "calls": 0 if self._st == IDLE else 1, "garbage": self.garbage}

    async def _read(self):
        await read_lines(self._r, self._line, self._junk, self.log, self._tag, self.line_size, self.idle_ms)

    def _emit(self, event, arg=None):
        if self.listener is None:
            return
        try:
            self.listener(self, event, arg)
        except Exception as e:  # a bug in the listener must not stop the reader
            self.log("%s: listener %s: %r" % (self._tag, event, e))

    def _alarm(self, code, detail):  # logged and reported
        self.log("%s: ALARM %s %s" % (self._tag, code, detail))
        self._emit("alarm", (code, detail))

    def _junk(self, what):
        """A line that means nothing: counted; the first 3 of a window logged; `garbage_limit` in one: alarm."""
        self.garbage += 1
        now = self._ms()
        if time.ticks_diff(now, self._junk_t0) > self.garbage_window_ms:
            self._junk_t0, self._junk_n = now, 0
        self._junk_n += 1
        if self._junk_n <= 3:
            self.log("%s: garbage %r" % (self._tag, what))
        if self._junk_n == self.garbage_limit and self.garbage_alarm:
            self._alarm(self.garbage_alarm, "%d bad lines in %d s" % (self._junk_n, self.garbage_window_ms // 1000))

    def _ring_start(self, now):
        """The first RING of an inbound call on an idle line: watched until reported and over."""
        self._st, self._num, self._rung, self._gen = RINGING, None, False, self._gen + 1
        asyncio.create_task(self._ring_watch(self._gen, now))

    def _report_ring(self):
        self._rung, self.ring_us = True, time.ticks_us()
        self._emit("ring", self._num)

    async def _ring_watch(self, gen, t0):
        """Report the call once caller id arrived (or after `caller_id_ms`), then notice the RINGs stopping."""
        while self._gen == gen and (self._st == RINGING or self._st == IGNORING):
            now = self._ms()
            if self._st == RINGING and not self._rung and (
                    self._num or time.ticks_diff(now, t0) >= self.caller_id_ms):
                self._report_ring()
            elif time.ticks_diff(now, self._ring_t) > self.ring_gap_ms:
                self._ended(self.rings_stopped)
            await asyncio.sleep_ms(250 if self._rung else 50)

    def _ended(self, why):
        """The call is over from the far side: reported (an ignored call ends silently)."""
        st = self._st
        self._st, self._gen = IDLE, self._gen + 1
        if st == IGNORING:
            return
        self.log("%s: call ended: %s" % (self._tag, why))
        if st == RINGING and not self._rung:
            self._report_ring()  # every inbound call is reported, even a very short one
        self._emit("hangup")
