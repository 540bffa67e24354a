"""What the board's modems and FXO lines have in common: a pty, a power supply, a call, and faults.

A device reads the firmware's lines from its pty and answers in its own protocol
(`command`), and hears from the operator what the far side did (`ring`, `remote_gone`,
`alerting`, `far_answered`, `far_failed`), which it tells the firmware its own way.
Frozen, it answers nothing; restarting (power cycle, or the AT+CFUN=1,1 the firmware
sends after timeouts), it drops its call and forgets its settings for `boot_s`.
"""

from __future__ import annotations

import collections
import time

from emulator.ptyloop import Pty, PtyLoop


class Device:
    dialect = ""  # "sim800" | "sim7600" | "fxo"
    off_hook = False  # FXO: the board holds the line

    def __init__(self, port: str, pty: Pty, loop: PtyLoop, operator, boot_s: float):
        self.port, self.pty, self.loop, self.operator, self.boot_s = port, pty, loop, operator, boot_s
        self.commands = collections.deque(maxlen=2000)
        self.reg, self.csq = 1, 20  # registration (1 home, 5 roaming), signal quality
        self.frozen, self.cfun_recovers, self.booting = False, True, False
        self.t_boot = time.monotonic()
        self.leg = None
        self.read_ns = 0  # time.monotonic_ns() when the last read from the firmware returned
        self.defaults()

    @property
    def path(self) -> str:
        return self.pty.path

    def defaults(self) -> None:
        """The settings a restart brings back."""

    def state(self) -> dict:
        return {"dialect": self.dialect, "reg": self.reg, "csq": self.csq, "frozen": self.frozen,
                "booting": self.booting, "leg": self.leg.id if self.leg else None, "dropped_bytes": self.pty.dropped}

    # ------------------------------------------------------------ bytes

    def write(self, data: bytes, force: bool = False) -> None:
        """Bytes to the firmware; a frozen or booting device says nothing unless forced (line noise)."""
        if (self.frozen or self.booting) and not force:
            return
        self.pty.write(data)

    def on_readable(self) -> None:
        data = self.pty.read()
        self.read_ns = time.monotonic_ns()
        if data is None or self.booting:
            return
        self.pty.inbuf += data
        for raw in self.pty.lines():
            if raw.strip():
                self._receive(raw.decode("latin-1").strip())
        self.pty.drop_overlong_line()

    def _receive(self, text: str) -> None:
        self.commands.append(text)
        if self.frozen:
            if self.cfun_recovers and text.upper().replace(" ", "") == "AT+CFUN=1,1":
                self.reboot()
            return
        self.command(text)

    def command(self, text: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ power and faults

    def reboot(self) -> None:
        if self.leg is not None:
            self.operator.end(self.leg, "gateway", "modem_reset")
        self.defaults()
        self.frozen, self.booting = False, True
        self.pty.clear()
        self.loop.after(self.boot_s, self.booted)

    def booted(self) -> None:
        self.booting = False
        self.t_boot = time.monotonic()

    def set_registered(self, stat: int) -> None:
        self.reg = stat

    # ------------------------------------------------------------ what the far side does

    def ring(self, leg, first: bool = False) -> None:
        raise NotImplementedError

    def remote_gone(self, leg) -> None:
        """The far side (caller, destination or network) ended the call."""
        raise NotImplementedError

    def alerting(self, leg) -> None:
        """The dialled destination rings."""

    def far_answered(self, leg) -> None:
        raise NotImplementedError

    def far_failed(self, leg, detail: str) -> None:
        """The dialled call failed: detail "unreachable" | "busy" | "no_answer"."""
        raise NotImplementedError

    def dtmf(self, digit: str) -> None:
        """The remote party of the current call presses a key."""
        if self.leg is not None and self.leg.state == "active":
            self._key_pressed(digit)

    def _key_pressed(self, digit: str) -> None:
        raise NotImplementedError
