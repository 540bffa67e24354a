"""The emulated GSM operator and its devices (host side of the emulated board, DESIGN section 8).

Each emulated modem is a pty pair: the network keeps the master and hands the
slave path to the firmware, which talks AT to it like to a SIM800 or SIM7600
on a UART. One background thread serves every device (`emulator.ptyloop`)
and plays the operator (`emulator.operator`):

* inbound calls: `call(port, caller)` rings the port's modem (RING every 3 s,
  +CLIP, +CLCC URCs as enabled) until the firmware answers (ATA) or rejects
  (ATH), the caller hangs up, or the operator gives up (`ring_limit_s`);
  the caller may press keys once answered (`keys=`, DTMF URCs);
* prompts: the modems speak text (AT+CTTS) and play audio files
  (`audio_file()`; SIM800 AT+CREC, SIM7600 AT+CCMXPLAY) (`emulator.playback`);
* outbound calls: `ATD<number>;` reaches a `destination()` that answers after
  N s and talks M s, is busy, never answers, or is unreachable (the default
  for unknown numbers); the far end hanging up shows as +CLCC stat 6 / NO CARRIER;
* ground truth: `truth()` lists every leg as it really happened, and which
  inbound and outbound legs were connected at the same time (the bridge)
  (`emulator.ledger`);
* faults: garbage bytes, a frozen modem, signal and registration changes,
  power cycles; network time for AT+CCLK? (`set_time`);
* analog lines: `add_fxo(port)` is an FXO daughterboard on an exchange line of
  the same operator (`emulator.fxo`).

Network time is `time_source()` (default `time.time`) shifted by `set_time()`;
timestamps in `truth()` are network time (unix seconds, float), durations are
measured with the monotonic clock.
"""

from __future__ import annotations

from emulator.fxo import FxoLine
from emulator.modems import DIALECTS
from emulator.operator import Call, Destination, NetworkClock, Operator
from emulator.ptyloop import Pty, PtyLoop

FXO_RING_EVERY_S = 5.0  # analog ringing cadence

__all__ = ["Call", "Destination", "GsmNetwork"]


class GsmNetwork:
    """The operator and its emulated devices; a context manager. All methods are thread-safe."""

    def __init__(self, time_source=None, ring_limit_s: float = 60.0, boot_s: float = 1.0,
                 fxo_ring_every_s: float = FXO_RING_EVERY_S):
        self.boot_s, self.fxo_ring_every_s = boot_s, fxo_ring_every_s  # for the devices added from now on
        self._clock = NetworkClock(time_source)
        self._loop = PtyLoop()
        self._lock = self._loop.lock
        self._operator = Operator(self._loop, self._clock, ring_limit_s)
        self._ports = self._operator.ports

    @property
    def ring_limit_s(self) -> float:
        return self._operator.ring_limit_s

    # ------------------------------------------------------------ devices

    def add_modem(self, port: str, dialect: str = "sim800", boot_urcs: bool = True) -> str:
        """A new modem on a new pty; returns the slave path to hand to the firmware."""
        if dialect not in DIALECTS:
            raise ValueError("dialect must be one of %s" % (tuple(DIALECTS),))
        with self._lock:
            m = self._add(port, lambda pty: DIALECTS[dialect](port, pty, self._loop, self._operator, self.boot_s))
            if boot_urcs:
                m.urc(*m.boot_urcs)
        self._loop.kick()
        return m.path

    def add_fxo(self, port: str) -> str:
        """A new FXO daughterboard on an exchange line, on a new pty; returns the slave path."""
        with self._lock:
            m = self._add(port, lambda pty: FxoLine(port, pty, self._loop, self._operator, self.boot_s,
                                                    self.fxo_ring_every_s))
        self._loop.kick()
        return m.path

    def set_number(self, port: str, number: str) -> None:
        """The phone number of the SIM on `port`: other devices reach it by dialling it (emulator.subscribers)."""
        with self._lock:
            if number in self._operator.numbers and self._operator.numbers[number] != port:
                raise ValueError("number %s belongs to %s" % (number, self._operator.numbers[number]))
            self._ports[port].number = number
            self._operator.numbers[number] = port

    def add_subscriber(self, name: str, number: str, dialect: str = "sim800") -> str:
        """A modem outside the board with its own SIM `number` (a bench's caller or centre modem), on a new
        pty; returns the pty's path, for a driver that speaks AT to it."""
        path = self.add_modem(name, dialect)
        with self._lock:
            self._ports[name].subscriber = True
        self.set_number(name, number)
        return path

    def _add(self, port, make):
        if port in self._ports:
            raise ValueError("port %s exists" % port)
        device = self._ports[port] = make(Pty())
        self._loop.register(device.pty, device.on_readable)
        return device

    # ------------------------------------------------------------ calls

    def destination(self, number: str, answer_after_s: float = 1, talk_s: float = 5, busy: bool = False,
                    no_answer: bool = False, unreachable: bool = False, lines: int | None = None,
                    alert_after_s: float = 0.2) -> Destination:
        """What `number` does when a board dials it; `alert_after_s`: until it rings (the post-dial delay a
        probe measures). An unknown number is unreachable: NO CARRIER without ever ringing."""
        d = Destination(number, answer_after_s, talk_s, busy, no_answer, unreachable, lines, alert_after_s)
        with self._lock:
            self._operator.destinations[number] = d
        return d

    def call(self, port: str, caller: str, hangup_after_s: float | None = None, keys: str | None = None,
             keys_after_s: float = 1.0) -> Call:
        """Place an inbound call from `caller` into the modem on `port`; once it is answered the caller presses
        `keys` (DTMF) from `keys_after_s` s on (None: no key)."""
        with self._lock:
            call = self._operator.call(port, caller, hangup_after_s, keys, keys_after_s)
        self._loop.kick()
        return call

    def audio_file(self, name: str, seconds: float) -> None:
        """An audio file every modem has on its flash (what AT+CREC=4 / AT+CCMXPLAY play), playing `seconds`."""
        with self._lock:
            self._operator.audio_files[name] = seconds

    def truth(self) -> list[dict]:
        """Every leg as it really happened, in start order. Each entry has

        id, dir ("in" | "out"), port, start / answer / end (network time, None while not yet),
        ring_s, talk_s, ended_by, detail, bridge (id of the leg of the other direction it was
        connected with longest, a reported bridge() first, or None); and

        * inbound legs: caller, result ("answered" | "abandoned" (caller left while ringing) |
          "rejected" (ATH while ringing) | "unanswered" (ring_limit_s) | "busy" | "unreachable" |
          "modem_reset" | "shutdown" | "ringing" / "active" while on), answered_by (number of the
          bridged outbound leg), bridge_s, attempts: [{id, number, port, result, detail, ring_s}]
          for the outbound legs dialled for it; prompts: [{prompt, kind ("tts" | "file"), at, s (None while
          playing), complete, heard}] what the board's modem played during the call (a menu answers the
          caller first: `answer` is then the board's, before any centre's); keys: the DTMF keys the board's
          modem heard;
        * outbound legs: number, result in the firmware's words ("answered" | "busy" | "no_answer"
          | "failed", None while on), inbound (id of the inbound leg it was dialled for), bridged_to (the
          number of the leg it was connected with). An operator's call to a citizen (the `call` command) is
          two outbound legs, the agent's and the citizen's, each with its own start and answer, bridged to
          each other (bridge = the other's id, inbound None). A probe is an outbound leg the board hangs up
          while it rings (detail "cancelled").

        ended_by: inbound "caller" | "gateway" | "network"; outbound "destination" | "gateway" |
        "network". detail: "answered", "busy", "no_answer" (the operator's NO ANSWER),
        "cancelled" (the gateway hung up while it rang), "unreachable", "modem_reset", ...
        """
        with self._lock:
            ledger = self._operator.ledger
            return [ledger.entry(leg) for leg in ledger.legs]

    def inbound(self) -> list[dict]:
        """truth() restricted to inbound legs: one entry per inbound call, with its attempts."""
        return [t for t in self.truth() if t["dir"] == "in"]

    def bridge(self, a: str, b: str) -> None:
        """The board reports that its audio switch connects ports a and b."""
        with self._lock:
            la, lb = self._ports[a].leg, self._ports[b].leg
            if la is not None and lb is not None:
                self._operator.ledger.bridged(la, lb)

    def unbridge(self, a: str, b: str) -> None:
        pass  # the bridge ends when either leg ends; kept for symmetry with the board's hw layer

    def dtmf(self, port: str, digits: str) -> None:
        """The remote party of the port's current call presses keys."""
        with self._lock:
            device = self._ports[port]
            for i, d in enumerate(digits):
                self._loop.after(0.15 * i, device.dtmf, d)
        self._loop.kick()

    # ------------------------------------------------------------ time

    def set_time(self, unix: float | None, tz_quarters: int = 0) -> None:
        """Network time (UTC seconds) from now on, advancing with real time; AT+CCLK? reports it as local
        time `tz_quarters` quarter hours east of UTC. None: no network time (the modems keep their RTC default).
        The network sends it (NITZ) to every registered modem, which reports it as its dialect does when asked
        to (SIM800 AT+CLTS=1: *PSUTTZ; SIM7600 AT+CTZR=2: +CTZE)."""
        with self._lock:
            self._clock.set(unix, tz_quarters)
            for device in self._ports.values():
                getattr(device, "network_time", lambda: None)()
        self._loop.kick()

    def now(self) -> float:
        return self._clock.now()

    # ------------------------------------------------------------ faults

    def garbage(self, port: str, data: bytes = b"\x00\xff\xfe\x13garbage\x88") -> None:
        with self._lock:
            self._ports[port].write(bytes(data), force=True)
        self._loop.kick()

    def freeze(self, port: str, on: bool = True, cfun_recovers: bool = True) -> None:
        """A frozen modem answers nothing and sends no URC. It recovers with freeze(port, False),
        power_cycle(port), or (when cfun_recovers) the AT+CFUN=1,1 the firmware sends after timeouts."""
        with self._lock:
            device = self._ports[port]
            device.frozen, device.cfun_recovers = on, cfun_recovers

    def power_cycle(self, port: str) -> None:
        """What the board's modem reset line does: the modem restarts (calls dropped, settings lost)."""
        with self._lock:
            self._ports[port].reboot()
        self._loop.kick()

    def set_signal(self, port: str, csq: int) -> None:
        with self._lock:
            self._ports[port].csq = csq

    def set_registered(self, port: str, stat: int) -> None:
        """Registration status (0-5; 1 home, 5 roaming); sends +CREG: stat when AT+CREG=1 is on."""
        with self._lock:
            self._ports[port].set_registered(stat)
        self._loop.kick()

    # ------------------------------------------------------------ inspection

    def commands(self, port: str) -> list[str]:
        """AT commands the modem received (the last 2000)."""
        with self._lock:
            return list(self._ports[port].commands)

    def modem_state(self, port: str) -> dict:
        with self._lock:
            return self._ports[port].state()

    # ------------------------------------------------------------ life

    def close(self) -> None:
        with self._lock:
            if self._loop.stopped:
                return
            self._loop.stopped = True
            self._operator.shut_down()
        self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
