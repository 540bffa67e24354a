"""Emulated GSM modems: the AT commands and unsolicited result codes of a SIM800 and a SIM7600.

`Modem` is what both answer alike; `Sim800` and `Sim7600` are where they differ (boot
URCs, ATI, +CLIP and +CLCC tails, which settings exist, the RTC without network time,
the SIM7600's VOICE CALL / MISSED_CALL URCs, how DTMF is reported, how audio files are played
and whether text-to-speech goes into the call: `emulator.playback`).
"""

from __future__ import annotations

import time

from emulator.device import Device
from emulator.playback import Player, sim800_file, sim7600_file

RING_EVERY_S = 3.0
NO_CARRIER_WHEN = {"unreachable": "NO CARRIER", "busy": "BUSY", "no_answer": "NO ANSWER"}  # a dialled call failed
CLCC_STAT = {"ringing": 4, "dialing": 2, "alerting": 3, "active": 0}  # any other state: 6, disconnected


class Modem(Device):
    model = ""  # ATI
    boot_urcs: tuple = ()
    rtc_default = ""  # AT+CCLK?'s date without network time
    clock_follows_network = False  # the RTC takes network time without AT+CLTS=1
    clip_tail = ""  # +CLIP after number and type
    clcc_tail = ""  # +CLCC after its alpha field
    settings = {"AT+CLIP": "clip", "AT+CLCC": "clcc", "AT+CREG": "creg_n", "AT+CRC": "crc"}  # AT+X=n -> attribute

    def defaults(self):
        self.echo, self.clip, self.clcc, self.creg_n = True, False, False, 0
        self.ddet, self.clts, self.crc, self.moring, self.cdtam = False, False, False, False, False
        self.ctzr = 0  # AT+CTZR (SIM7600): 1 +CTZV, 2 +CTZE on a network time
        self.player = getattr(self, "player", None) or Player(self)
        self.player.stop([])  # a restart ends what was playing

    def state(self) -> dict:
        return dict(super().state(), echo=self.echo, clip=self.clip, clcc=self.clcc, creg_n=self.creg_n)

    def reply(self, *lines: str) -> None:
        self.write(b"".join(b"\r\n" + ln.encode() + b"\r\n" for ln in lines))

    urc = reply  # an unsolicited result code is framed like a reply

    def booted(self):
        super().booted()
        self.urc(*self.boot_urcs)

    def set_registered(self, stat):
        super().set_registered(stat)
        if self.creg_n:
            self.urc("+CREG: %d" % stat)

    # ------------------------------------------------------------ the AT interpreter

    def command(self, text):
        cmd = text.upper().replace(" ", "")
        if self.echo:
            self.write(text.encode() + b"\r")
        ok = "OK"
        if cmd in ("AT", "AT&W", "ATZ", "AT+CFUN=1", "AT+CSCLK=0"):
            self.reply(ok)
        elif cmd in ("ATE0", "ATE1", "ATE"):
            self.echo = cmd == "ATE1"
            self.reply(ok)
        elif cmd == "ATI":
            self.reply(self.model, ok)
        elif cmd in ("AT+CGSN", "AT+GSN"):
            self.reply("8675670312%05d" % (sum(map(ord, self.port)) % 100000), ok)
        elif cmd == "AT+CPIN?":
            self.reply("+CPIN: READY", ok)
        elif cmd == "AT+CFUN?":
            self.reply("+CFUN: 1", ok)
        elif cmd == "AT+CFUN=1,1":
            self.reply(ok)
            self.reboot()
        elif cmd == "AT+CSQ":
            self.reply("+CSQ: %d,0" % self.csq, ok)
        elif cmd == "AT+CREG?":
            self.reply("+CREG: %d,%d" % (self.creg_n, self.reg), ok)
        elif cmd == "AT+CCLK?":
            self.reply('+CCLK: "%s"' % self._cclk(), ok)
        elif cmd == "AT+CLIP?":
            self.reply("+CLIP: %d,1" % self.clip, ok)
        elif cmd == "AT+CLCC":
            lines = [self._clcc_line(self.leg)] if self.leg else []
            self.reply(*lines, ok)
        elif self._setting(cmd):
            self.reply(ok)
        elif cmd == "ATA":
            self._ata()
        elif cmd in ("ATH", "ATH0", "AT+CHUP"):
            self._ath()
        elif cmd.startswith("ATD"):
            self._atd(text[3:].strip())
        elif cmd.startswith("AT+VTS="):
            self._vts(cmd[7:].strip('"'))
        elif cmd.startswith(("AT+CTTS=", "AT+CREC=", "AT+CCMXPLAY=")) or cmd == "AT+CCMXSTOP":
            if not self.player.command(cmd, text):
                self.reply("ERROR")
        else:
            self.reply("ERROR")

    def _setting(self, cmd):
        """AT+X=n for a setting this dialect has; True if taken."""
        name, _, value = cmd.partition("=")
        if name not in self.settings or not value:
            return False
        try:
            n = int(value.split(",")[0])
        except ValueError:
            return False
        if n not in ((0, 1, 2) if name == "AT+CREG" else (0, 1)):
            return False
        setattr(self, self.settings[name], n if name == "AT+CREG" else bool(n))
        return True

    def network_time(self):
        """The network sent its time and zone (NITZ, at registration or a change): report it as this dialect
        does when asked to (nothing by default)."""

    def _local(self):
        clock = self.operator.clock
        q = clock.tz_quarters
        return time.gmtime(int(clock.now()) + q * 900), "%s%02d" % ("-" if q < 0 else "+", abs(q))

    def _cclk(self):
        clock = self.operator.clock
        if not (clock.has_time and (self.clts or self.clock_follows_network)):
            up = int(time.monotonic() - self.t_boot)
            return "%s,%02d:%02d:%02d+00" % (self.rtc_default, up // 3600 % 24, up // 60 % 60, up % 60)
        q = clock.tz_quarters
        tm = time.gmtime(int(clock.now()) + q * 900)
        return "%02d/%02d/%02d,%02d:%02d:%02d%s%02d" % (tm.tm_year % 100, tm.tm_mon, tm.tm_mday, tm.tm_hour,
                                                      tm.tm_min, tm.tm_sec, "-" if q < 0 else "+", abs(q))

    def _clcc_line(self, leg, stat=None):
        if stat is None:
            stat = CLCC_STAT.get(leg.state, 6)
        kind = 145 if leg.number.startswith("+") else 129
        return '+CLCC: 1,%d,%d,0,0,"%s",%d,""' % (leg.dir == "in", stat, leg.number, kind) + self.clcc_tail

    def _clcc(self, leg, stat=None):
        if self.clcc:
            self.urc(self._clcc_line(leg, stat))

    # ------------------------------------------------------------ calls

    def _ata(self):
        leg = self.leg
        if leg is None or leg.dir != "in" or leg.state != "ringing":
            self.reply("NO CARRIER")
            return
        leg.answer()
        self.reply("OK")
        self._clcc(leg)
        self._voice_call_begins()
        if leg.peer is not None:
            self.operator.device_answered(leg)

    def _ath(self):
        leg = self.leg
        self.reply("OK")
        if leg is None:
            return
        was_active = leg.t_answer is not None
        self.player.stop([])
        self.operator.gateway_hangs_up(leg)
        self._clcc(leg, 6)
        if was_active:
            self._voice_call_ends(leg)

    def _atd(self, target):
        if not target.endswith(";"):
            self.reply("NO CARRIER")  # a data call: not here
            return
        number = target[:-1]
        digits = number[1:] if number.startswith("+") else number
        if not digits or not all(c in "0123456789*#" for c in digits) or self.leg is not None:
            self.reply("ERROR")
            return
        if self.reg not in (1, 5):
            self.reply("NO CARRIER")
            return
        leg = self.operator.dial(self, number)
        leg.atd_ns = self.read_ns
        self.reply("OK")
        self._clcc(leg)

    def _vts(self, digits):
        """DTMF tones on the call in progress: the far device hears them (a subscriber line's call)."""
        leg = self.leg
        if leg is None or leg.state != "active" or not digits or not all(c in "0123456789*#ABCD" for c in digits):
            self.reply("ERROR")
            return
        if leg.peer is not None:
            far = self.operator.ports.get(leg.peer.port)
            for i, d in enumerate(digits):
                self.loop.after(0.1 * i, far.dtmf, d)
        self.reply("OK")

    def ring(self, leg, first=False):
        if leg.state != "ringing":
            return
        if first:
            self._clcc(leg)
        self.urc("+CRING: VOICE" if self.crc else "RING")
        if self.clip:
            kind = 145 if leg.number.startswith("+") else 129
            if leg.clip_ns is None:
                leg.clip_ns = time.monotonic_ns()
            self.urc('+CLIP: "%s",%d%s' % (leg.number, kind, self.clip_tail))
        leg.after(self.loop, RING_EVERY_S, self.ring, leg)

    def remote_gone(self, leg):
        self.player.stop([])
        self._clcc(leg, 6)
        self._far_side_gone(leg)

    def _far_side_gone(self, leg):
        self.urc("NO CARRIER")

    def alerting(self, leg):
        self._clcc(leg)
        if self.moring:
            self.urc("MO RING")

    def far_answered(self, leg):
        self._clcc(leg)
        if self.moring:
            self.urc("MO CONNECTED")
        self._voice_call_begins()

    def far_failed(self, leg, detail):
        self._clcc(leg, 6)
        self.urc(NO_CARRIER_WHEN[detail])

    def _voice_call_begins(self):
        pass

    def _voice_call_ends(self, leg):
        pass

    def tts_to_call(self) -> bool:
        """Whether text-to-speech goes to the far end of a call."""
        return True

    def play_file_command(self, player, cmd, text) -> bool:
        return False


class Sim800(Modem):
    dialect = "sim800"
    model = "SIM800 R14.18"
    boot_urcs = ("RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready")
    rtc_default = "04/01/01"
    clip_tail = ',"",0,"",0'
    settings = dict(Modem.settings, **{"AT+DDET": "ddet", "AT+CLTS": "clts", "AT+MORING": "moring"})

    def network_time(self):
        """With AT+CLTS=1: `*PSUTTZ` (the network's UTC, its zone), `+CTZV` (the zone) and `DST` (SIM800 manual)."""
        if not (self.clts and self.operator.clock.has_time and self.reg in (1, 5)):
            return
        u, (_, tz) = time.gmtime(int(self.operator.clock.now())), self._local()
        self.urc('*PSUTTZ: %d,%d,%d,%d,%d,%d,"%s",0' % (u.tm_year, u.tm_mon, u.tm_mday, u.tm_hour, u.tm_min,
                                                       u.tm_sec, tz), '+CTZV: "%s"' % tz, "DST: 0")

    def _key_pressed(self, digit):
        if self.ddet:
            self.urc("+DTMF: %s" % digit)
            self.leg.keys += digit

    def play_file_command(self, player, cmd, text):
        return sim800_file(player, cmd, text)


class Sim7600(Modem):
    dialect = "sim7600"
    model = "Model: SIMCOM_SIM7600E-H"
    boot_urcs = ("RDY", "+CPIN: READY", "SMS DONE", "PB DONE")
    rtc_default = "80/01/06"
    clock_follows_network = True
    clip_tail = ",,,,0"
    clcc_tail = ",,0"  # priority, CLI validity
    settings = dict(Modem.settings, **{"AT+CTZU": "clts", "AT+CDTAM": "cdtam"})

    def _setting(self, cmd):
        if cmd.startswith("AT+CTZR="):  # 0..3 (27.007); 3 (+CTZEU) is not reported here
            if cmd[8:] not in ("0", "1", "2"):
                return False
            self.ctzr = int(cmd[8:])
            return True
        return super()._setting(cmd)

    def network_time(self):
        """AT+CTZR=1: `+CTZV: "±zz"`; AT+CTZR=2: `+CTZE: "±zz",dst,"yyyy/MM/dd,hh:mm:ss"` (local time, 27.007)."""
        if not (self.ctzr and self.operator.clock.has_time and self.reg in (1, 5)):
            return
        lt, tz = self._local()
        if self.ctzr == 1:
            self.urc('+CTZV: "%s"' % tz)
            return
        self.urc('+CTZE: "%s",0,"%04d/%02d/%02d,%02d:%02d:%02d"' % (tz, lt.tm_year, lt.tm_mon, lt.tm_mday, lt.tm_hour,
                                                                  lt.tm_min, lt.tm_sec))

    def _far_side_gone(self, leg):
        if leg.t_answer is not None:
            self._voice_call_ends(leg)
        elif leg.dir == "in":  # a missed call: no NO CARRIER
            now = time.gmtime(self.operator.clock.now())
            self.urc("MISSED_CALL: %s %s" % (time.strftime("%I:%M%p", now), leg.number))
            return
        self.urc("NO CARRIER")

    def _voice_call_begins(self):
        self.urc("VOICE CALL: BEGIN")

    def _voice_call_ends(self, leg):
        self.urc("VOICE CALL: END: %06d" % int(leg.t_end - leg.t_answer))

    def _key_pressed(self, digit):
        self.urc("+RXDTMF: %s" % digit)
        self.leg.keys += digit

    def tts_to_call(self):
        return self.cdtam  # AT+CDTAM=1: TTS to the remote side

    def play_file_command(self, player, cmd, text):
        return sim7600_file(player, cmd, text)


DIALECTS = {m.dialect: m for m in (Sim800, Sim7600)}
