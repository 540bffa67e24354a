"""An emulated FXO daughterboard on an exchange line of the operator, speaking firmware/gw/fxo.py's line protocol.

RING every `ring_every_s` with `CID <number>` after the first; `HOOK OFF` answers or
seizes the line, `DIAL 00...` reaches `+...`; the far side shows as `ANSWERED`,
`BUSYTONE`, `LOOP OFF` (loop current gone), `DTMF <d>`. An analog call cannot be
refused: `HOOK ON` while it rings changes nothing, and a line left off hook is busy
for new calls. No answer from a dialled number is ringback, then nothing.
A hung module is `network.freeze(port)`: it answers nothing, PING included, until
the board's reset line for it (`network.power_cycle(port)`) restarts it.
"""

from __future__ import annotations

from emulator.device import Device

SIGNAL_WHEN = {"unreachable": "LOOP OFF", "busy": "BUSYTONE"}  # a dialled call failed; no_answer: silence


class FxoLine(Device):
    dialect = "fxo"

    def __init__(self, port, pty, loop, operator, boot_s: float, ring_every_s: float):
        self.ring_every_s = ring_every_s
        super().__init__(port, pty, loop, operator, boot_s)

    def defaults(self):
        self.off_hook = False

    def state(self) -> dict:
        return dict(super().state(), off_hook=self.off_hook)

    def send(self, *lines: str) -> None:
        self.write("".join(ln + "\r\n" for ln in lines).encode())

    # ------------------------------------------------------------ the board's commands

    def command(self, text):
        words = text.upper().split()
        leg = self.leg
        if words == ["PING"]:
            self.send("OK")
        elif words == ["HOOK", "OFF"]:
            self.off_hook = True
            self.send("OK")
            if leg is not None and leg.dir == "in" and leg.state == "ringing":
                leg.answer()
        elif words == ["HOOK", "ON"]:
            self.off_hook = False
            self.send("OK")
            if leg is not None and not (leg.dir == "in" and leg.state == "ringing"):  # a ringing call rings on
                self.operator.gateway_hangs_up(leg)
        elif len(words) == 2 and words[0] == "DIAL":
            self._dial(words[1])
        else:
            self.send("ERR unknown command")

    def _dial(self, digits):
        if not self.off_hook or self.leg is not None:
            self.send("ERR no dial tone")
            return
        if not 2 <= len(digits) <= 20 or not all(c in "0123456789*#" for c in digits):
            self.send("ERR bad number")
            return
        self.operator.dial(self, "+" + digits[2:] if digits.startswith("00") else digits)
        self.send("OK")

    # ------------------------------------------------------------ what the far side does

    def ring(self, leg, first=False):
        if leg.state != "ringing":
            return
        self.send("RING")
        if first:  # caller id is sent between the first and the second ring
            leg.after(self.loop, min(0.5, self.ring_every_s / 2), self._caller_id, leg)
        leg.after(self.loop, self.ring_every_s, self.ring, leg)

    def _caller_id(self, leg):
        if leg.state == "ringing":
            self.send("CID " + leg.number)

    def remote_gone(self, leg):
        if leg.t_answer is not None:  # loop current drops; a ringing call just stops ringing
            self.send("LOOP OFF")

    def far_answered(self, leg):
        self.send("ANSWERED")  # the far end hangs up after talk_s: remote_gone sends LOOP OFF

    def far_failed(self, leg, detail):
        if detail in SIGNAL_WHEN:
            self.send(SIGNAL_WHEN[detail])

    def _key_pressed(self, digit):
        self.send("DTMF " + digit)
