"""Prompts the emulated modems play: text-to-speech (AT+CTTS), SIM800 audio files (AT+CREC=4) and SIM7600
audio files (AT+CCMXPLAY), with the responses and end codes their AT manuals show.

    AT+CTTS=2,"<text>" | AT+CTTS=1,"<UCS2 hex>"  OK ... +CTTS: 0 when done;   AT+CTTS=0 stops (OK)
    SIM800  AT+CREC=4,"C:\\User\\<file>",<channel>,<volume>  OK ... +CREC: 0 when done;  AT+CREC=5 stops
    SIM7600 AT+CCMXPLAY="<path>",<play_path>,<repeat>  OK, +AUDIOSTATE: audio play ... +AUDIOSTATE: audio play stop;
            AT+CCMXSTOP stops (OK, +AUDIOSTATE: audio play stop); TTS goes into a call only after AT+CDTAM=1

Text takes TTS_CHAR_S a character (at least TTS_MIN_S); a file plays the seconds `GsmNetwork.audio_file()` gave
it, and a file the network never got is missing (ERROR). What plays while the modem's call is up goes on the
call's leg (`prompts` in truth(): what, how, when, how long, whether it played to its end, whether the caller
heard it: a SIM7600 without AT+CDTAM=1, or CCMXPLAY with play path 0, plays to its own speaker).
"""

from __future__ import annotations

import time

TTS_CHAR_S, TTS_MIN_S = 0.06, 0.8


def _quoted(arg: str) -> str | None:
    arg = arg.strip()
    return arg[1:-1] if len(arg) >= 2 and arg[0] == '"' and arg[-1] == '"' else None


def _ucs2(hexa: str) -> str | None:
    if len(hexa) % 4 or not hexa:
        return None
    try:
        return "".join(chr(int(hexa[i:i + 4], 16)) for i in range(0, len(hexa), 4))
    except ValueError:
        return None


class Player:
    """The one prompt a modem plays at a time."""

    def __init__(self, modem):
        self.modem = modem
        self.playing: dict | None = None  # {"entry", "end_urcs", "timer"}

    def command(self, cmd: str, text: str) -> bool:
        """Handle an audio command (cmd: upper-cased, no spaces; text: as sent); False if it is not one."""
        m = self.modem
        if cmd.startswith("AT+CTTS="):
            arg = text.split("=", 1)[1].strip()
            mode, _, body = arg.partition(",")
            if mode.strip() == "0" and not body:
                self.stop([])
                return m.reply("OK") or True
            words = _quoted(body) if mode.strip() in ("1", "2") else None
            if words is not None and mode.strip() == "1":
                words = _ucs2(words)
            if not words:
                return m.reply("ERROR") or True
            seconds = max(TTS_MIN_S, TTS_CHAR_S * len(words))
            m.reply("OK")
            self.start(words, "tts", seconds, m.tts_to_call(), ["+CTTS: 0"])
            return True
        return m.play_file_command(self, cmd, text)

    def file(self, path: str, heard: bool, end_urcs: list[str], start_urcs: tuple = ()) -> None:
        """Play the audio file at `path` (a module path; its base name is the file the network knows)."""
        m = self.modem
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        seconds = m.operator.audio_files.get(name)
        if seconds is None:
            m.reply("ERROR")
            return
        m.reply("OK")
        if start_urcs:
            m.urc(*start_urcs)
        self.start(name, "file", seconds, heard, end_urcs)

    def start(self, prompt: str, kind: str, seconds: float, heard: bool, end_urcs: list[str]) -> None:
        self.stop([])  # a new prompt replaces the one playing
        m, leg = self.modem, self.modem.leg
        entry = {"prompt": prompt, "kind": kind, "at": round(m.operator.clock.now(), 3), "s": None,
                 "complete": False, "heard": bool(heard and leg is not None and leg.state == "active")}
        if leg is not None and leg.state == "active":
            leg.prompts.append(entry)
        self.playing = {"entry": entry, "end_urcs": end_urcs, "timer": None, "t0": time.monotonic()}
        self.playing["timer"] = m.loop.after(seconds, self._ended, self.playing)

    def _ended(self, playing: dict) -> None:
        if self.playing is playing:
            self._finish(True)
            self.modem.urc(*playing["end_urcs"])

    def stop(self, urcs: list[str]) -> None:
        """Stopped by a command, a hang-up or a restart; `urcs` say so (when the dialect does)."""
        if self.playing is not None:
            self.playing["timer"].cancel()
            self._finish(False)
            if urcs:
                self.modem.urc(*urcs)

    def _finish(self, complete: bool) -> None:
        entry = self.playing["entry"]
        entry["s"], entry["complete"] = round(time.monotonic() - self.playing["t0"], 3), complete
        self.playing = None


def sim800_file(player: Player, cmd: str, text: str) -> bool:
    """AT+CREC=4,"C:\\User\\<file>",<channel>,<volume>[,<repeat>] plays (ends with +CREC: 0); AT+CREC=5 stops."""
    args = [a.strip() for a in text.split("=", 1)[1].split(",")]
    if args[0] == "4" and len(args) >= 2 and _quoted(args[1]):
        player.file(_quoted(args[1]), True, ["+CREC: 0"])
    elif cmd == "AT+CREC=5":
        player.stop([])
        player.modem.reply("OK")
    else:
        return False
    return True


def sim7600_file(player: Player, cmd: str, text: str) -> bool:
    """AT+CCMXPLAY="<path>"[,<play_path>[,<repeat>]] (play path 1: into the call); AT+CCMXSTOP."""
    stopped = "+AUDIOSTATE: audio play stop"
    if cmd == "AT+CCMXSTOP":
        player.modem.reply("OK")
        player.stop([stopped])
        return True
    args = [a.strip() for a in text.split("=", 1)[1].split(",")]
    if not _quoted(args[0]) or not set(args[1:2]) <= {"0", "1"}:
        return False
    player.file(_quoted(args[0]), args[1:2] == ["1"], [stopped], ("+AUDIOSTATE: audio play",))
    return True
