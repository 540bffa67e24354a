"""A GSM modem on a serial line (any pyserial URL) driven with 3GPP 27.007 AT commands.

`AtModem.command()` sends one command and returns its response lines (ERROR and timeouts raise `AtError`);
lines nobody asked for (RING, +CLIP, NO CARRIER, ...) go to `on_urc(line)` on the reader thread, which must
not send commands itself (actions run on timers or the caller's own thread).
"""

from __future__ import annotations

import threading
import time

import serial

FINAL_OK = ("OK",)
FINAL_ERROR = ("ERROR", "+CME ERROR", "+CMS ERROR")
CALL_ENDS = ("NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")  # final for ATD/ATA, else unsolicited
URC_PREFIXES = ("RING", "+CRING", "+CLIP", "MISSED_CALL", "VOICE CALL", "+DTMF", "+RXDTMF", "+CREG", "RDY",
                "+CPIN", "Call Ready", "SMS Ready", "SMS DONE", "PB DONE", "+CFUN", "MO RING", "MO CONNECTED")
MAX_LINE = 4096


class AtError(RuntimeError):
    pass


class AtModem:
    def __init__(self, name: str, url: str, baudrate: int = 115200, on_urc=None):
        self.name, self.url, self.baudrate = name, url, baudrate
        self.on_urc = on_urc or (lambda line: None)
        self.log: list[tuple[float, str, str]] = []  # (time, ">" sent | "<" received, line)
        self._port = None
        self._cmd_lock = threading.Lock()  # one command at a time
        self._state = threading.Condition()
        self._pending: str | None = None  # the command waiting for its final result
        self._response: list[str] = []
        self._final: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ life

    def open(self, ready_timeout: float = 10.0) -> AtModem:
        self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.1)
        self._thread = threading.Thread(target=self._read, name=f"modem {self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + ready_timeout
        while True:  # a modem still booting answers nothing: ask until it says OK
            try:
                self.command("AT", timeout=1)
                break
            except AtError:
                if time.monotonic() > deadline:
                    raise AtError(f"modem {self.name} on {self.url} does not answer AT") from None
        self.command("ATE0")
        for setup in ("AT+CMEE=1", "AT+CLIP=1"):  # numeric errors and caller ids, where the modem has them
            try:
                self.command(setup)
            except AtError:
                pass
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._port is not None:
            self._port.close()
            self._port = None

    # ------------------------------------------------------------ commands

    def command(self, cmd: str, timeout: float = 5.0) -> list[str]:
        """Send `cmd`; its response lines (without echo and final OK). ERROR, +CME ERROR, NO CARRIER, BUSY
        and no answer within `timeout` raise AtError naming the modem, the command and what came."""
        with self._cmd_lock:
            with self._state:
                self._pending, self._response, self._final = cmd, [], None
            self._note(">", cmd)
            self._port.write(cmd.encode() + b"\r")
            with self._state:
                self._state.wait_for(lambda: self._final is not None, timeout)
                final, response, self._pending = self._final, self._response, None
        if final is None:
            raise AtError(f"modem {self.name}: no answer to {cmd} within {timeout}s (got {response})")
        if final != "OK":
            raise AtError(f"modem {self.name}: {cmd} -> {final}")
        return response

    def _read(self) -> None:
        pending = bytearray()
        while not self._stop.is_set():
            try:
                data = self._port.read(1024)
            except (serial.SerialException, OSError, TypeError):
                return
            pending += data
            while True:
                cut = min((i for i in (pending.find(b"\r"), pending.find(b"\n")) if i >= 0), default=-1)
                if cut < 0:
                    break
                line = bytes(pending[:cut]).decode("latin-1").strip()
                del pending[:cut + 1]
                if line:
                    self._line(line)
            if len(pending) > MAX_LINE:
                pending.clear()  # noise without a line end

    def _line(self, line: str) -> None:
        self._note("<", line)
        with self._state:
            cmd = self._pending
            if cmd is not None and self._final is None:
                if line == cmd:  # the echo of a modem that still echoes
                    return
                ends_call = line in CALL_ENDS and cmd.upper().startswith(("ATD", "ATA", "ATH"))
                if line in FINAL_OK or line.startswith(FINAL_ERROR) or ends_call:
                    self._final = line
                    self._state.notify_all()
                    if line not in CALL_ENDS:
                        return
                elif self._answers(cmd, line):
                    self._response.append(line)
                    return
        self.on_urc(line)

    @staticmethod
    def _answers(cmd: str, line: str) -> bool:
        """Whether `line` is part of the response to `cmd` rather than an unsolicited code."""
        if line.startswith(URC_PREFIXES) or line in CALL_ENDS:
            name = cmd[2:].split("=")[0].split("?")[0]
            return bool(name) and line.startswith(name + ":")
        return True

    def _note(self, way: str, line: str) -> None:
        self.log.append((time.time(), way, line))
        if len(self.log) > 10_000:
            del self.log[:1000]

    # ------------------------------------------------------------ calls

    def clcc(self) -> list[dict]:
        """The modem's calls now: [{"dir": "out"|"in", "stat": 0 active .. 5 waiting, "number"}]."""
        calls = []
        for line in self.command("AT+CLCC"):
            if not line.startswith("+CLCC:"):
                continue
            f = [p.strip().strip('"') for p in line[6:].split(",")]
            try:
                calls.append({"dir": "in" if f[1] == "1" else "out", "stat": int(f[2]),
                              "number": f[5] if len(f) > 5 else ""})
            except (IndexError, ValueError):
                continue  # a line we cannot read is skipped, not fatal
        return calls

    def dial(self, number: str) -> None:
        self.command(f"ATD{number};", timeout=20)

    def answer(self) -> None:
        self.command("ATA", timeout=20)

    def hang_up(self) -> None:
        self.command("ATH", timeout=20)

    def keys(self, digits: str) -> None:
        """DTMF tones on the current call, one AT+VTS per key."""
        for d in digits:
            self.command(f"AT+VTS={d}", timeout=10)
