"""The emulated GSM operator and its modems (host side of the emulated board, DESIGN section 8).

Each emulated modem is a pty pair: the network keeps the master and hands the
slave path to the firmware, which talks AT to it like to a SIM800 or SIM7600
on a UART. One background thread serves every modem with `selectors` (plus a
wake-up pipe and a timer heap: no busy loop) and plays the operator:

* inbound calls: `call(port, caller)` rings the port's modem (RING every 3 s,
  +CLIP, +CLCC URCs as enabled) until the firmware answers (ATA) or rejects
  (ATH), the caller hangs up, or the operator gives up (`ring_limit_s`);
* outbound calls: `ATD<number>;` reaches a `destination()` that answers after
  N s and talks M s, is busy, never answers, or is unreachable (the default
  for unknown numbers); the far end hanging up shows as +CLCC stat 6 / NO CARRIER;
* ground truth: `truth()` lists every leg as it really happened, and which
  inbound and outbound legs were connected at the same time (the bridge);
* faults: garbage bytes, a frozen modem, signal and registration changes,
  power cycles; network time for AT+CCLK? (`set_time`);
* analog lines: `add_fxo(port)` is an FXO daughterboard on an exchange line of
  the same operator, speaking the line protocol of firmware/gw/fxo.py (RING every
  `fxo_ring_every_s`, CID after the first; HOOK OFF answers or seizes, DIAL
  `00...` reaches `+...`, ANSWERED / BUSYTONE / LOOP OFF). An analog call cannot
  be refused: HOOK ON while it rings changes nothing, and a line left off hook
  is busy for new calls.

Network time is `time_source()` (default `time.time`) shifted by `set_time()`;
timestamps in `truth()` are network time (unix seconds, float), durations are
measured with the monotonic clock.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import os
import selectors
import threading
import time
import tty
from dataclasses import dataclass, field

RING_EVERY_S = 3.0
FXO_RING_EVERY_S = 5.0  # analog ringing cadence
OUT_MAX = 64 * 1024  # bytes kept for a firmware that does not read its UART
IN_MAX = 4096  # bytes of a command line without its CR
BOOT_URCS = {"sim800": ("RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"),
             "sim7600": ("RDY", "+CPIN: READY", "SMS DONE", "PB DONE")}
DEFAULT_CCLK = {"sim800": "04/01/01", "sim7600": "80/01/06"}  # what the RTC says without network time
DIALECTS = tuple(BOOT_URCS)


@dataclass
class Destination:
    number: str
    answer_after_s: float = 1.0
    talk_s: float = 5.0
    busy: bool = False
    no_answer: bool = False
    unreachable: bool = False
    lines: int | None = None  # simultaneous calls it takes; more get BUSY


@dataclass
class _Leg:
    id: int
    dir: str  # "in" | "out"
    port: str
    number: str  # inbound: the caller; outbound: the dialled number
    t_start: float  # monotonic
    state: str = "ringing"  # in: ringing/active/ended; out: dialing/alerting/active/ended
    t_answer: float | None = None
    t_end: float | None = None
    ended_by: str | None = None
    detail: str | None = None
    inbound: int | None = None  # outbound: id of the inbound leg it was made for, when known
    bridged: int | None = None  # reported by bridge(): the other leg
    near: list = field(default_factory=list)  # legs of the other direction alive when one of the two began
    timers: list = field(default_factory=list)
    call: Call | None = None


class _Modem:
    kind = "gsm"
    off_hook = False  # FXO: the board holds the line

    def __init__(self, port, dialect, master, slave, path):
        self.port, self.dialect, self.master, self.slave, self.path = port, dialect, master, slave, path
        self.outbuf = bytearray()
        self.inbuf = bytearray()
        self.commands = collections.deque(maxlen=2000)
        self.dropped = 0
        self.reg, self.csq = 1, 20
        self.frozen, self.cfun_recovers, self.booting = False, True, False
        self.t_boot = time.monotonic()
        self.leg: _Leg | None = None
        self.defaults()

    def defaults(self):
        self.echo, self.clip, self.clcc, self.creg_n = True, False, False, 0
        self.ddet, self.clts, self.crc, self.moring = False, False, False, False


class _Fxo(_Modem):
    """An FXO daughterboard: a pty like a modem, the FXO line protocol instead of AT."""

    kind = "fxo"

    def defaults(self):
        super().defaults()
        self.echo, self.off_hook = False, False


class Call:
    """An inbound call as its caller experiences it."""

    def __init__(self, net: GsmNetwork, leg: _Leg):
        self._net, self._leg = net, leg
        self._done = threading.Event()
        self.id = leg.id

    @property
    def state(self) -> str:
        return self._leg.state

    def hangup(self) -> None:
        """The caller hangs up now."""
        self._net._caller_hangs_up(self._leg)

    def wait(self, timeout: float) -> dict:
        """Wait until the call ended; returns {"answered", "ring_s", "talk_s", "connected_to", "ended_by", ...}."""
        if not self._done.wait(timeout):
            raise TimeoutError("call %d from %s still %s after %ss" % (self.id, self._leg.number, self.state, timeout))
        return self.result()

    def result(self) -> dict:
        with self._net._lock:
            t = self._net._leg_dict(self._leg)
            return {"id": self.id, "port": t["port"], "caller": t["caller"], "answered": t["answer"] is not None,
                    "ring_s": t["ring_s"], "talk_s": t["talk_s"], "connected_to": t["answered_by"],
                    "ended_by": t["ended_by"], "result": t["result"]}


class GsmNetwork:
    """The operator and its emulated modems; a context manager. All methods are thread-safe."""

    def __init__(self, time_source=None, ring_limit_s: float = 60.0, boot_s: float = 1.0,
                 fxo_ring_every_s: float = FXO_RING_EVERY_S):
        self._time = time_source or time.time
        self.fxo_ring_every_s = fxo_ring_every_s
        self._offset = 0.0
        self._has_time = True  # the operator sends network time (NITZ); set_time(None) withholds it
        self._tz_q = 0
        self.ring_limit_s, self.boot_s = ring_limit_s, boot_s
        self._lock = threading.RLock()
        self._modems: dict[str, _Modem] = {}
        self._dests: dict[str, Destination] = {}
        self._legs: list[_Leg] = []
        self._index: dict[int, _Leg] = {}
        self._live: dict[int, _Leg] = {}  # legs not ended yet
        self._ids = itertools.count(1)
        self._timers: list = []
        self._seq = itertools.count()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="gsmnet", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public API

    def add_modem(self, port: str, dialect: str = "sim800", boot_urcs: bool = True) -> str:
        """A new modem on a new pty; returns the slave path to hand to the firmware."""
        if dialect not in DIALECTS:
            raise ValueError("dialect must be one of %s" % (DIALECTS,))
        master, slave = os.openpty()
        tty.setraw(slave)  # no line discipline echo before the firmware opens it
        os.set_blocking(master, False)
        m = _Modem(port, dialect, master, slave, os.ttyname(slave))
        with self._lock:
            if port in self._modems:
                raise ValueError("port %s exists" % port)
            self._modems[port] = m
            self._sel.register(master, selectors.EVENT_READ, m)
            if boot_urcs:
                self._urc(m, *BOOT_URCS[dialect])
        self._kick()
        return m.path

    def add_fxo(self, port: str) -> str:
        """A new FXO daughterboard on an exchange line, on a new pty; returns the slave path."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        m = _Fxo(port, "fxo", master, slave, os.ttyname(slave))
        with self._lock:
            if port in self._modems:
                raise ValueError("port %s exists" % port)
            self._modems[port] = m
            self._sel.register(master, selectors.EVENT_READ, m)
        self._kick()
        return m.path

    def destination(self, number: str, answer_after_s: float = 1, talk_s: float = 5, busy: bool = False,
                    no_answer: bool = False, unreachable: bool = False, lines: int | None = None) -> Destination:
        d = Destination(number, answer_after_s, talk_s, busy, no_answer, unreachable, lines)
        with self._lock:
            self._dests[number] = d
        return d

    def call(self, port: str, caller: str, hangup_after_s: float | None = None) -> Call:
        """Place an inbound call from `caller` into the modem on `port`."""
        with self._lock:
            m = self._modems[port]
            leg = self._new_leg("in", port, caller)
            leg.call = Call(self, leg)
            busy = m.leg is not None or m.off_hook
            if busy or m.reg not in (1, 5) or m.booting:
                self._end(leg, "network", "busy" if busy else "unreachable")
                return leg.call
            m.leg = leg
            if hangup_after_s is not None:
                self._at(leg, hangup_after_s, self._caller_hangs_up, leg)
            self._at(leg, self.ring_limit_s, self._release_in, leg, "network", "unanswered")
            self._ring(m, leg, first=True)
        self._kick()
        return leg.call

    def truth(self) -> list[dict]:
        """Every leg as it really happened, in start order. Each entry has

        id, dir ("in" | "out"), port, start / answer / end (network time, None while not yet),
        ring_s, talk_s, ended_by, detail, bridge (id of the leg of the other direction it was
        connected with longest, a reported bridge() first, or None); and

        * inbound legs: caller, result ("answered" | "abandoned" (caller left while ringing) |
          "rejected" (ATH while ringing) | "unanswered" (ring_limit_s) | "busy" | "unreachable" |
          "modem_reset" | "shutdown" | "ringing" / "active" while on), answered_by (number of the
          bridged outbound leg), bridge_s, attempts: [{id, number, port, result, detail, ring_s}]
          for the outbound legs dialled for it;
        * outbound legs: number, result in the firmware's words ("answered" | "busy" | "no_answer"
          | "failed", None while on), inbound (id of the inbound leg it was dialled for).

        ended_by: inbound "caller" | "gateway" | "network"; outbound "destination" | "gateway" |
        "network". detail: "answered", "busy", "no_answer" (the operator's NO ANSWER),
        "cancelled" (the gateway hung up while it rang), "unreachable", "modem_reset", ...
        """
        with self._lock:
            return [self._leg_dict(leg) for leg in self._legs]

    def inbound(self) -> list[dict]:
        """truth() restricted to inbound legs: one entry per inbound call, with its attempts."""
        return [t for t in self.truth() if t["dir"] == "in"]

    def set_time(self, unix: float | None, tz_quarters: int = 0) -> None:
        """Network time (UTC seconds) from now on, advancing with real time; AT+CCLK? reports it as local
        time `tz_quarters` quarter hours east of UTC. None: no network time (the modems keep their RTC default)."""
        with self._lock:
            self._has_time = unix is not None
            self._offset = 0.0 if unix is None else unix - self._time()
            self._tz_q = tz_quarters

    def now(self) -> float:
        return self._time() + self._offset

    def garbage(self, port: str, data: bytes = b"\x00\xff\xfe\x13garbage\x88") -> None:
        with self._lock:
            self._write(self._modems[port], bytes(data), force=True)
        self._kick()

    def freeze(self, port: str, on: bool = True, cfun_recovers: bool = True) -> None:
        """A frozen modem answers nothing and sends no URC. It recovers with freeze(port, False),
        power_cycle(port), or (when cfun_recovers) the AT+CFUN=1,1 the firmware sends after timeouts."""
        with self._lock:
            m = self._modems[port]
            m.frozen, m.cfun_recovers = on, cfun_recovers

    def power_cycle(self, port: str) -> None:
        """What the board's modem reset line does: the modem restarts (calls dropped, settings lost)."""
        with self._lock:
            self._reboot(self._modems[port])
        self._kick()

    def set_signal(self, port: str, csq: int) -> None:
        with self._lock:
            self._modems[port].csq = csq

    def set_registered(self, port: str, stat: int) -> None:
        """Registration status (0-5; 1 home, 5 roaming); sends +CREG: stat when AT+CREG=1 is on."""
        with self._lock:
            m = self._modems[port]
            m.reg = stat
            if m.creg_n:
                self._urc(m, "+CREG: %d" % stat)
        self._kick()

    def dtmf(self, port: str, digits: str) -> None:
        """The remote party of the port's current call presses keys."""
        with self._lock:
            m = self._modems[port]
            for i, d in enumerate(digits):
                self._after(0.15 * i, self._send_dtmf, m, d)
        self._kick()

    def bridge(self, a: str, b: str) -> None:
        """The board reports that its audio switch connects ports a and b."""
        with self._lock:
            la, lb = self._modems[a].leg, self._modems[b].leg
            if la is not None and lb is not None:
                la.bridged, lb.bridged = lb.id, la.id
                for x, y in ((la, lb), (lb, la)):
                    if x.dir == "out" and y.dir == "in":
                        x.inbound = y.id
                    if y.id not in x.near:
                        x.near.append(y.id)

    def unbridge(self, a: str, b: str) -> None:
        pass  # the bridge ends when either leg ends; kept for symmetry with the board's hw layer

    def commands(self, port: str) -> list[str]:
        """AT commands the modem received (the last 2000)."""
        with self._lock:
            return list(self._modems[port].commands)

    def modem_state(self, port: str) -> dict:
        with self._lock:
            m = self._modems[port]
            return {"dialect": m.dialect, "echo": m.echo, "clip": m.clip, "clcc": m.clcc, "creg_n": m.creg_n,
                    "reg": m.reg, "csq": m.csq, "frozen": m.frozen, "booting": m.booting,
                    "leg": m.leg.id if m.leg else None, "dropped_bytes": m.dropped}

    def close(self) -> None:
        with self._lock:
            if self._stop:
                return
            self._stop = True
            for leg in list(self._live.values()):
                self._end(leg, "network", "shutdown")
        self._kick()
        self._thread.join(5)
        for m in self._modems.values():
            for fd in (m.master, m.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ the thread

    def _kick(self):
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _run(self):
        while True:
            with self._lock:
                if self._stop:
                    return
                for m in self._modems.values():
                    want = selectors.EVENT_READ | (selectors.EVENT_WRITE if m.outbuf else 0)
                    if self._sel.get_key(m.master).events != want:
                        self._sel.modify(m.master, want, m)
                timeout = 0.5
                if self._timers:
                    timeout = max(0.0, min(timeout, self._timers[0][0] - time.monotonic()))
            events = self._sel.select(timeout)
            with self._lock:
                if self._stop:
                    return
                for key, mask in events:
                    if key.data is None:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                        continue
                    if mask & selectors.EVENT_READ:
                        self._on_read(key.data)
                    if mask & selectors.EVENT_WRITE:
                        self._flush(key.data)
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, handle = heapq.heappop(self._timers)
                    if not handle[0]:
                        handle[0] = True
                        handle[1](*handle[2])

    def _after(self, delay, fn, *args):
        """Run fn(*args) on the network thread after `delay` s (lock held); returns a cancellable handle."""
        handle = [False, fn, args]
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), handle))
        return handle

    def _at(self, leg, delay, fn, *args):
        leg.timers.append(self._after(delay, fn, *args))

    # ------------------------------------------------------------ bytes

    def _write(self, m, data, force=False):
        if (m.frozen or m.booting) and not force:
            return
        m.outbuf += data
        if len(m.outbuf) > OUT_MAX:
            m.dropped += len(m.outbuf) - OUT_MAX
            del m.outbuf[:len(m.outbuf) - OUT_MAX]
        self._flush(m)

    def _flush(self, m):
        while m.outbuf:
            try:
                n = os.write(m.master, m.outbuf)
            except (BlockingIOError, OSError):
                return
            del m.outbuf[:n]

    def _reply(self, m, *lines):
        self._write(m, b"".join(b"\r\n" + ln.encode() + b"\r\n" for ln in lines))

    def _urc(self, m, *lines):
        self._reply(m, *lines)

    def _on_read(self, m):
        try:
            data = os.read(m.master, 4096)
        except (BlockingIOError, OSError):
            return
        if m.booting:
            return
        m.inbuf += data
        while True:
            cut = min((i for i in (m.inbuf.find(b"\r"), m.inbuf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                break
            raw = bytes(m.inbuf[:cut])
            del m.inbuf[:cut + 1]
            if raw.strip():
                self._command(m, raw.decode("latin-1").strip())
        if len(m.inbuf) > IN_MAX:
            m.inbuf.clear()

    # ------------------------------------------------------------ the AT interpreter

    def _command(self, m, text):
        m.commands.append(text)
        cmd = text.upper().replace(" ", "")
        if m.frozen:
            if m.cfun_recovers and cmd == "AT+CFUN=1,1":
                self._reboot(m)
            return
        if m.kind == "fxo":
            self._fxo_command(m, text.upper().split())
            return
        if m.echo:
            self._write(m, text.encode() + b"\r")
        sim800 = m.dialect == "sim800"
        ok = "OK"
        if cmd in ("AT", "AT&W", "ATZ", "AT+CFUN=1", "AT+CSCLK=0"):
            self._reply(m, ok)
        elif cmd in ("ATE0", "ATE1", "ATE"):
            m.echo = cmd == "ATE1"
            self._reply(m, ok)
        elif cmd == "ATI":
            self._reply(m, "SIM800 R14.18" if sim800 else "Model: SIMCOM_SIM7600E-H", ok)
        elif cmd in ("AT+CGSN", "AT+GSN"):
            self._reply(m, "8675670312%05d" % (sum(map(ord, m.port)) % 100000), ok)
        elif cmd == "AT+CPIN?":
            self._reply(m, "+CPIN: READY", ok)
        elif cmd == "AT+CFUN?":
            self._reply(m, "+CFUN: 1", ok)
        elif cmd == "AT+CFUN=1,1":
            self._reply(m, ok)
            self._reboot(m)
        elif cmd in ("AT+CSQ",):
            self._reply(m, "+CSQ: %d,0" % m.csq, ok)
        elif cmd == "AT+CREG?":
            self._reply(m, "+CREG: %d,%d" % (m.creg_n, m.reg), ok)
        elif cmd == "AT+CCLK?":
            self._reply(m, '+CCLK: "%s"' % self._cclk(m), ok)
        elif cmd == "AT+CLIP?":
            self._reply(m, "+CLIP: %d,1" % m.clip, ok)
        elif cmd == "AT+CLCC":
            lines = [self._clcc_line(m, m.leg)] if m.leg else []
            self._reply(m, *lines, ok)
        elif self._setting(m, cmd):
            self._reply(m, ok)
        elif cmd == "ATA":
            self._ata(m)
        elif cmd in ("ATH", "ATH0", "AT+CHUP"):
            self._ath(m)
        elif cmd.startswith("ATD"):
            self._atd(m, text[3:].strip())
        else:
            self._reply(m, "ERROR")

    def _setting(self, m, cmd):
        """AT+X=n settings both dialects share or one of them has; True if taken."""
        name, _, value = cmd.partition("=")
        ours = {"AT+CLIP": "clip", "AT+CLCC": "clcc", "AT+CREG": "creg_n", "AT+CRC": "crc"}
        if m.dialect == "sim800":
            ours.update({"AT+DDET": "ddet", "AT+CLTS": "clts", "AT+MORING": "moring"})
        else:
            ours.update({"AT+CTZU": "clts"})
        if name not in ours or not value:
            return False
        try:
            n = int(value.split(",")[0])
        except ValueError:
            return False
        if n not in ((0, 1, 2) if name == "AT+CREG" else (0, 1)):
            return False
        setattr(m, ours[name], n if name == "AT+CREG" else bool(n))
        return True

    def _cclk(self, m):
        if not (self._has_time and (m.clts or m.dialect == "sim7600")):
            up = int(time.monotonic() - m.t_boot)
            return "%s,%02d:%02d:%02d+00" % (DEFAULT_CCLK[m.dialect], up // 3600 % 24, up // 60 % 60, up % 60)
        local = int(self.now()) + self._tz_q * 900
        tm = time.gmtime(local)
        q = self._tz_q
        return "%02d/%02d/%02d,%02d:%02d:%02d%s%02d" % (tm.tm_year % 100, tm.tm_mon, tm.tm_mday, tm.tm_hour,
                                                      tm.tm_min, tm.tm_sec, "-" if q < 0 else "+", abs(q))

    def _clcc_line(self, m, leg, stat=None):
        if stat is None:
            stat = {"ringing": 4, "dialing": 2, "alerting": 3, "active": 0}.get(leg.state, 6)
        kind = 145 if leg.number.startswith("+") else 129
        line = '+CLCC: 1,%d,%d,0,0,"%s",%d,""' % (leg.dir == "in", stat, leg.number, kind)
        return line + ",,0" if m.dialect == "sim7600" else line  # SIM7600: priority, CLI validity

    def _clcc(self, m, leg, stat=None):
        if m.clcc:
            self._urc(m, self._clcc_line(m, leg, stat))

    def _send_dtmf(self, m, digit):
        if m.leg is not None and m.leg.state == "active":
            if m.kind == "fxo":
                self._fxo_send(m, "DTMF " + digit)
            elif m.dialect == "sim7600":
                self._urc(m, "+RXDTMF: %s" % digit)
            elif m.ddet:
                self._urc(m, "+DTMF: %s" % digit)

    # ------------------------------------------------------------ calls

    def _new_leg(self, direction, port, number):
        leg = _Leg(next(self._ids), direction, port, number, time.monotonic())
        if direction == "out":
            leg.state = "dialing"
        leg.near = [x.id for x in self._live.values() if x.dir != direction]
        for other in leg.near:
            self._index[other].near.append(leg.id)
        self._legs.append(leg)
        self._index[leg.id] = leg
        self._live[leg.id] = leg
        return leg

    def _end(self, leg, by, detail):
        if leg.state == "ended":
            return
        leg.state, leg.t_end, leg.ended_by, leg.detail = "ended", time.monotonic(), by, detail
        self._live.pop(leg.id, None)
        for h in leg.timers:
            h[0] = True
        m = self._modems.get(leg.port)
        if m is not None and m.leg is leg:
            m.leg = None
        if leg.call is not None:
            leg.call._done.set()

    def _ring(self, m, leg, first=False):
        if leg.state != "ringing":
            return
        if m.kind == "fxo":
            self._fxo_send(m, "RING")
            if first:  # caller id is sent between the first and the second ring
                self._at(leg, min(0.5, self.fxo_ring_every_s / 2), self._fxo_cid, m, leg)
            self._at(leg, self.fxo_ring_every_s, self._ring, m, leg)
            return
        if first:
            self._clcc(m, leg)
        self._urc(m, "+CRING: VOICE" if m.crc else "RING")
        if m.clip:
            kind = 145 if leg.number.startswith("+") else 129
            tail = ',"",0,"",0' if m.dialect == "sim800" else ",,,,0"
            self._urc(m, '+CLIP: "%s",%d%s' % (leg.number, kind, tail))
        self._at(leg, RING_EVERY_S, self._ring, m, leg)

    def _remote_gone(self, m, leg):
        """URCs for a call the far side ended (caller, destination or network)."""
        was_active = leg.t_answer is not None
        if m.kind == "fxo":  # loop current drops; a ringing call just stops ringing
            if was_active:
                self._fxo_send(m, "LOOP OFF")
            return
        self._clcc(m, leg, 6)
        if m.dialect == "sim7600":
            if was_active:
                self._urc(m, "VOICE CALL: END: %06d" % int(time.monotonic() - leg.t_answer))
            elif leg.dir == "in":
                self._urc(m, "MISSED_CALL: %s %s" % (time.strftime("%I:%M%p", time.gmtime(self.now())), leg.number))
        if was_active or leg.dir == "out" or m.dialect == "sim800":
            self._urc(m, "NO CARRIER")

    def _caller_hangs_up(self, leg):
        with self._lock:
            if leg.dir == "in" and leg.state != "ended":
                self._release_in(leg, "caller", "answered" if leg.t_answer is not None else "abandoned")
        self._kick()

    def _release_in(self, leg, by, detail):
        if leg.state == "ended":
            return
        m = self._modems[leg.port]
        self._end(leg, by, detail)
        self._remote_gone(m, leg)

    def _ata(self, m):
        leg = m.leg
        if leg is None or leg.dir != "in" or leg.state != "ringing":
            self._reply(m, "NO CARRIER")
            return
        for h in leg.timers:  # stop ringing and the operator's ring limit; keep the caller's patience
            if h[1] in (self._ring, self._release_in):
                h[0] = True
        leg.state, leg.t_answer = "active", time.monotonic()
        self._reply(m, "OK")
        self._clcc(m, leg)
        if m.dialect == "sim7600":
            self._urc(m, "VOICE CALL: BEGIN")

    def _ath(self, m):
        leg = m.leg
        self._reply(m, "OK")
        if leg is None:
            return
        was_active = leg.t_answer is not None
        if leg.dir == "in":
            self._end(leg, "gateway", "answered" if was_active else "rejected")
        else:
            self._end(leg, "gateway", "answered" if was_active else "cancelled")
        self._clcc(m, leg, 6)
        if was_active and m.dialect == "sim7600":
            self._urc(m, "VOICE CALL: END: %06d" % int(leg.t_end - leg.t_answer))

    def _atd(self, m, target):
        if not target.endswith(";"):
            self._reply(m, "NO CARRIER")  # a data call: not here
            return
        number = target[:-1]
        digits = number[1:] if number.startswith("+") else number
        if not digits or not all(c in "0123456789*#" for c in digits):
            self._reply(m, "ERROR")
            return
        if m.leg is not None:
            self._reply(m, "ERROR")
            return
        if m.reg not in (1, 5):
            self._reply(m, "NO CARRIER")
            return
        leg = self._new_leg("out", m.port, number)
        leg.inbound = leg.near[0] if len(leg.near) == 1 else None  # the only inbound call in progress
        m.leg = leg
        self._reply(m, "OK")
        self._clcc(m, leg)
        d = self._dests.get(number)
        if d is None or d.unreachable:
            self._at(leg, 0.3, self._far_fails, m, leg, "unreachable", "NO CARRIER")
            return
        taken = sum(1 for x in self._live.values() if x.dir == "out" and x.number == number) - 1
        if d.busy or (d.lines is not None and taken >= d.lines):
            self._at(leg, 0.5, self._far_fails, m, leg, "busy", "BUSY")
            return
        self._at(leg, 0.2, self._alerting, m, leg)
        if not d.no_answer:
            self._at(leg, max(0.25, d.answer_after_s), self._far_answers, m, leg, d)
        self._at(leg, self.ring_limit_s, self._far_fails, m, leg, "no_answer", "NO ANSWER")

    def _far_fails(self, m, leg, detail, code):
        if leg.state == "ended":
            return
        self._end(leg, "network", detail)
        self._clcc(m, leg, 6)
        self._urc(m, code)

    def _alerting(self, m, leg):
        if leg.state == "dialing":
            leg.state = "alerting"
            self._clcc(m, leg)
            if m.moring:
                self._urc(m, "MO RING")

    def _far_answers(self, m, leg, d):
        if leg.state not in ("dialing", "alerting"):
            return
        for h in leg.timers:
            h[0] = True
        leg.timers = []
        leg.state, leg.t_answer = "active", time.monotonic()
        self._clcc(m, leg)
        if m.moring:
            self._urc(m, "MO CONNECTED")
        if m.dialect == "sim7600":
            self._urc(m, "VOICE CALL: BEGIN")
        self._at(leg, d.talk_s, self._far_hangs_up, m, leg)

    def _far_hangs_up(self, m, leg):
        if leg.state == "active":
            self._end(leg, "destination", "answered")
            self._remote_gone(m, leg)

    def _reboot(self, m):
        if m.leg is not None:
            leg = m.leg
            self._end(leg, "gateway", "modem_reset")
        m.defaults()
        m.frozen, m.booting = False, True
        m.inbuf.clear()
        m.outbuf.clear()
        self._after(self.boot_s, self._booted, m)

    def _booted(self, m):
        m.booting = False
        m.t_boot = time.monotonic()
        if m.kind == "gsm":
            self._urc(m, *BOOT_URCS[m.dialect])

    # ------------------------------------------------------------ the FXO line protocol

    def _fxo_send(self, m, *lines):
        self._write(m, "".join(ln + "\r\n" for ln in lines).encode())

    def _fxo_command(self, m, words):
        leg = m.leg
        if words == ["PING"]:
            self._fxo_send(m, "OK")
        elif words == ["HOOK", "OFF"]:
            m.off_hook = True
            self._fxo_send(m, "OK")
            if leg is not None and leg.dir == "in" and leg.state == "ringing":
                for h in leg.timers:  # answered: ringing and the operator's limit stop, the caller's patience not
                    if h[1] in (self._ring, self._release_in, self._fxo_cid):
                        h[0] = True
                leg.state, leg.t_answer = "active", time.monotonic()
        elif words == ["HOOK", "ON"]:
            m.off_hook = False
            self._fxo_send(m, "OK")
            if leg is not None and not (leg.dir == "in" and leg.state == "ringing"):  # a ringing call rings on
                self._end(leg, "gateway", "answered" if leg.t_answer is not None else "cancelled")
        elif len(words) == 2 and words[0] == "DIAL":
            self._fxo_dial(m, words[1])
        else:
            self._fxo_send(m, "ERR unknown command")

    def _fxo_dial(self, m, digits):
        if not m.off_hook or m.leg is not None:
            self._fxo_send(m, "ERR no dial tone")
            return
        if not 2 <= len(digits) <= 20 or not all(c in "0123456789*#" for c in digits):
            self._fxo_send(m, "ERR bad number")
            return
        number = "+" + digits[2:] if digits.startswith("00") else digits
        leg = self._new_leg("out", m.port, number)
        leg.inbound = leg.near[0] if len(leg.near) == 1 else None  # the only inbound call in progress
        m.leg = leg
        self._fxo_send(m, "OK")
        d = self._dests.get(number)
        if d is None or d.unreachable:
            self._at(leg, 0.3, self._fxo_far_fails, m, leg, "unreachable", "LOOP OFF")
            return
        taken = sum(1 for x in self._live.values() if x.dir == "out" and x.number == number) - 1
        if d.busy or (d.lines is not None and taken >= d.lines):
            self._at(leg, 0.5, self._fxo_far_fails, m, leg, "busy", "BUSYTONE")
            return
        self._at(leg, 0.2, self._alerting, m, leg)
        if not d.no_answer:
            self._at(leg, max(0.25, d.answer_after_s), self._fxo_far_answers, m, leg, d)
        self._at(leg, self.ring_limit_s, self._fxo_far_fails, m, leg, "no_answer", None)  # ringback, then nothing

    def _fxo_cid(self, m, leg):
        if leg.state == "ringing":
            self._fxo_send(m, "CID " + leg.number)

    def _fxo_far_fails(self, m, leg, detail, signal):
        if leg.state != "ended":
            self._end(leg, "network", detail)
            if signal:
                self._fxo_send(m, signal)

    def _fxo_far_answers(self, m, leg, d):
        if leg.state in ("dialing", "alerting"):
            self._far_answers(m, leg, d)  # far end hangs up after talk_s: _remote_gone sends LOOP OFF
            self._fxo_send(m, "ANSWERED")

    # ------------------------------------------------------------ truth

    def _net_time(self, mono):
        return None if mono is None else round(self.now() - (time.monotonic() - mono), 3)

    def _connected(self, leg):
        if leg.t_answer is None:
            return None
        return leg.t_answer, leg.t_end if leg.t_end is not None else time.monotonic()

    def _overlap(self, a, b):
        ca, cb = self._connected(a), self._connected(b)
        if ca is None or cb is None:
            return 0.0
        return max(0.0, min(ca[1], cb[1]) - max(ca[0], cb[0]))

    def _partner(self, leg):
        """The leg of the other direction connected with this one longest (a reported bridge first)."""
        if leg.bridged is not None:
            return self._index[leg.bridged]
        best = max((self._index[i] for i in leg.near), key=lambda x: self._overlap(leg, x), default=None)
        return best if best is not None and self._overlap(leg, best) > 0 else None

    def _owner(self, out):
        """The inbound leg an outbound leg was dialled for: reported bridge, only call alive, or overlap."""
        if out.inbound is not None:
            return out.inbound
        partner = self._partner(out)
        return partner.id if partner is not None else None

    def _leg_dict(self, leg):
        end = leg.t_end if leg.t_end is not None else time.monotonic()
        ring_end = leg.t_answer if leg.t_answer is not None else end
        partner = self._partner(leg)
        d = {"id": leg.id, "dir": leg.dir, "port": leg.port, "start": self._net_time(leg.t_start),
             "answer": self._net_time(leg.t_answer), "end": self._net_time(leg.t_end),
             "ring_s": round(ring_end - leg.t_start, 3),
             "talk_s": round(end - leg.t_answer, 3) if leg.t_answer is not None else 0.0,
             "ended_by": leg.ended_by, "detail": leg.detail if leg.state == "ended" else leg.state,
             "bridge": partner.id if partner is not None else None}
        if leg.dir == "out":
            d.update(number=leg.number, result=_out_result(leg), inbound=self._owner(leg))
            return d
        outs = [x for x in (self._index[i] for i in leg.near) if self._owner(x) == leg.id]
        d.update(caller=leg.number, result=leg.detail if leg.state == "ended" else leg.state,
                 answered_by=partner.number if partner is not None else None,
                 bridge_s=round(self._overlap(leg, partner), 3) if partner is not None else 0.0,
                 attempts=[{"id": x.id, "number": x.number, "port": x.port, "result": _out_result(x),
                            "detail": x.detail if x.state == "ended" else x.state,
                            "ring_s": round((x.t_answer or x.t_end or time.monotonic()) - x.t_start, 3)}
                           for x in outs])
        return d


def _out_result(leg):
    """An outbound leg's outcome in the firmware's words: answered | busy | no_answer | failed (None while on)."""
    if leg.t_answer is not None:
        return "answered"
    if leg.state != "ended":
        return None
    return {"busy": "busy", "no_answer": "no_answer", "cancelled": "no_answer"}.get(leg.detail, "failed")
