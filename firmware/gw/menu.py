"""IVR menus at the edge (DESIGN §5a): answer the caller, play the menu's prompt, collect one DTMF key.

How a prompt is played. A prompt that is a file name ending in .amr, .wav or .mp3 (letters, digits,
`_ . -`) is an audio file on the modem's own flash; any other prompt is text the modem speaks (TTS):

    SIM800   file  AT+CREC=4,"C:\\User\\<name>",0,90   ends with +CREC: 0        stop AT+CREC=5
             text  AT+CTTS=2,"<text>"                   ends with +CTTS: 0        stop AT+CTTS=0
    SIM7600  file  AT+CCMXPLAY="C:/<name>",1,0          ends with +AUDIOSTATE: audio play stop (stop AT+CCMXSTOP)
             text  AT+CDTAM=1 (TTS into the call), then as SIM800

Text outside printable ASCII (or with a `"`) is sent as UCS2 hex (AT+CTTS=1). The model is asked once per
line (ATI). The first key of 0-9 * # the caller presses (+DTMF / +RXDTMF) counts, during the prompt (which
it stops) or within `timeout_s` after it; the prompt is played `tries` times; no key: "" (the default
option). An FXO line has no player (its module only decodes DTMF): the menu is not played and the call
takes the default option, with the reason logged. Unlike a plain route's late answer, a menu call's
caller is answered (and charged) when the prompt starts: the record says when (`menu_answer_s`).
"""

import asyncio
import time

KEYS = "0123456789*#"
PROMPT_MAX_MS = 30000  # longest a prompt may play: its end code not come by then, it is stopped
_FILE_ENDS = (".amr", ".wav", ".mp3")
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-"


def is_file(prompt):
    """Whether the prompt names an audio file on the module (else it is text to speak)."""
    low = prompt.lower()
    return low.endswith(_FILE_ENDS) and all(c in _NAME_CHARS for c in low)


def tts_command(text):
    if all(32 <= ord(c) < 127 and c != '"' for c in text):
        return 'AT+CTTS=2,"%s"' % text
    return 'AT+CTTS=1,"%s"' % "".join("%04X" % (ord(c) if ord(c) < 0x10000 else 0x3F) for c in text)


def play_command(model, prompt):
    if not is_file(prompt):
        return tts_command(prompt)
    if model == "sim7600":
        return 'AT+CCMXPLAY="C:/%s",1,0' % prompt
    return 'AT+CREC=4,"C:\\User\\%s",0,90' % prompt


def stop_command(model, prompt):
    if not is_file(prompt):
        return "AT+CTTS=0"
    return "AT+CCMXSTOP" if model == "sim7600" else "AT+CREC=5"


async def _until(ready, ms):
    """Poll `ready()` every 50 ms for at most `ms`; its last value."""
    t0 = time.ticks_ms()
    while not ready() and time.ticks_diff(time.ticks_ms(), t0) < ms:
        await asyncio.sleep_ms(50)
    return ready()


class MenuSession:
    """One caller in one menu. The call machine hands it the line's "dtmf" and "played" events."""

    def __init__(self, line, menu, log):
        self.line, self.menu, self.log = line, menu, log
        self.key = None  # the first valid key pressed
        self.prompts = 0  # times the prompt was started
        self._played = False  # the modem said the prompt ended

    def on_event(self, event, arg):  # from the line's reader: never blocks
        if event == "dtmf":
            if isinstance(arg, str) and len(arg) == 1 and arg in KEYS:
                if self.key is None:
                    self.key = arg
            else:
                self.log("menu %s: %s: garbage key %r skipped" % (self.menu.id, self.line.name, arg))
        elif event == "played":
            self._played = True

    async def _cmd(self, text):
        try:
            await self.line.cmd(text, None, getattr(self.line, "call_cmd_ms", 6000))
            return True
        except Exception as e:  # ERROR, timeout: the modem cannot do it now
            self.log("menu %s: %s: %s failed: %s" % (self.menu.id, self.line.name, text[:24], e))
            return False

    async def _model(self):
        """"sim800" or "sim7600", from ATI, remembered on the line."""
        line = self.line
        if getattr(line, "menu_model", None) is None:
            try:
                info = await line.cmd("ATI", "")
            except Exception as e:
                self.log("menu: %s: ATI failed: %s" % (line.name, e))
                return "sim800"
            line.menu_model = "sim7600" if any("SIM7600" in x or "SIM7500" in x for x in info) else "sim800"
        return line.menu_model

    async def run(self, gone):
        """Play and collect: the key, or "" (none in time, or no prompt could be played). Returns early when
        `gone` (the caller hung up) is set; the caller must already be answered."""
        model = await self._model()
        prompt = self.menu.prompt
        for _ in range(self.menu.tries):
            if gone.is_set() or self.key is not None:
                break
            self._played = False
            if model == "sim7600" and not is_file(prompt):
                await self._cmd("AT+CDTAM=1")  # TTS to the far end (lost when the modem restarts)
            if not await self._cmd(play_command(model, prompt)):
                break  # no prompt to hear: the default option rather than silence
            self.prompts += 1
            if not await _until(lambda: self.key is not None or gone.is_set() or self._played, PROMPT_MAX_MS):
                self.log("menu %s: %s: no end of prompt after %d ms" % (self.menu.id, self.line.name, PROMPT_MAX_MS))
            if not self._played and not gone.is_set():
                await self._cmd(stop_command(model, prompt))  # a key stops the prompt
            if self.key is None and not gone.is_set():
                await _until(lambda: self.key is not None or gone.is_set(), self.menu.timeout_s * 1000)
        return self.key or ""


async def ask(call, menu, rec, log, secs):
    """The menu for one call: answers it, plays the prompt and returns the key ("" = none: the default option).
    Fills the record's menu fields; `call.caller_gone` set on return means the caller hung up meanwhile."""
    line = call.line
    rec["menu"], rec["keys"], rec["prompts"] = menu.id, "", 0
    if getattr(line, "kind", "") != "gsm":
        log("menu %s: %s cannot play prompts (an FXO module has no player): default option" % (menu.id, line.name))
        return ""
    # the session listens before ATA: a key pressed as soon as the caller is answered can come in the same
    # UART read as ATA's OK, and is handed on before answer() returns (it was lost, the default taken)
    session = call.menu = MenuSession(line, menu, log)
    try:
        if not await line.answer():
            return ""  # the caller left while it rang ("hangup" sent), or the modem refused ATA
        call.answered = True
        rec["menu_answer_s"] = secs(call.t0)
        keys = await session.run(call.caller_gone)
    finally:
        call.menu = None
    rec["keys"], rec["prompts"] = keys, session.prompts
    log("menu %s: %s: key %r after %d prompt(s)" % (menu.id, line.name, keys, session.prompts))
    return keys
