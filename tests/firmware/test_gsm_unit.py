"""gw.gsm.GsmLine on the real MicroPython binary against scripted modem bytes on a pty.

`MpyGsm` (also used by test_gsm_network.py) runs tests/firmware/mpy/line_harness.py: one
GsmLine on a pty slave, driven over stdin/stdout JSON lines. `FakeModem` holds the pty
master and answers commands from a table the test writes, or stays silent, or injects bytes.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import tty

import pytest

from emulator import micropython

pytestmark = pytest.mark.micropython

HARNESS = micropython.REPO / "tests" / "firmware" / "mpy" / "line_harness.py"
FAST = {"timeout_ms": 1000, "call_cmd_ms": 1500, "poll_ms": 400, "retry_ms": 300, "boot_ms": 1500, "fail_limit": 2,
        "caller_id_ms": 500, "ring_gap_ms": 1500, "garbage_window_ms": 3000}


class MpyGsm:
    """A GsmLine in a micropython process; call() runs an operation, wait_event() awaits a listener event."""

    def __init__(self, pty_path: str, timings: dict | None = None, reset_hook: bool = False, heap: str = "220K",
                 kind: str = "gsm"):
        base = FAST if kind == "gsm" else {}
        settings = {"timings": dict(base, **(timings or {})), "reset_hook": reset_hook, "kind": kind}
        env = dict(os.environ, MICROPYPATH=micropython.search_path(micropython.REPO / "firmware"))
        self.proc = subprocess.Popen(micropython.command(HARNESS, pty_path, json.dumps(settings), heap=heap),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1, env=env, cwd=micropython.REPO)
        self.events: list[dict] = []
        self.logs: list[str] = []
        self._results: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._next = 0
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self.wait_event("harness_up", 10)

    def _pump(self):
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = {"log": raw.rstrip()}
            with self._cond:
                if "id" in msg:
                    self._results[msg["id"]] = msg
                elif "ev" in msg:
                    self.events.append(msg)
                else:
                    self.logs.append(msg.get("log", ""))
                self._cond.notify_all()
        with self._cond:
            self.logs.append("<exit %s>" % self.proc.poll())
            self._cond.notify_all()

    def send(self, op: str, *args) -> int:
        self._next += 1
        self.proc.stdin.write(json.dumps({"id": self._next, "op": op, "args": list(args)}) + "\n")
        self.proc.stdin.flush()
        return self._next

    def result(self, rid: int, timeout: float = 10):
        with self._cond:
            if not self._cond.wait_for(lambda: rid in self._results, timeout):
                raise AssertionError("no answer to request %d in %ss; log:\n%s" % (rid, timeout, self.log_text()))
            msg = self._results.pop(rid)
        if not msg["ok"]:
            raise RuntimeError(msg["error"])
        return msg["result"]

    def call(self, op: str, *args, timeout: float = 10):
        return self.result(self.send(op, *args), timeout)

    def wait_event(self, name: str, timeout: float, after: int = 0, pred=None) -> dict:
        """The first event `name` among events[after:] (matching pred), waiting up to `timeout` s."""
        def find():
            for ev in self.events[after:]:
                if ev["ev"] == name and (pred is None or pred(ev)):
                    return ev
            return None
        with self._cond:
            if not self._cond.wait_for(lambda: find() is not None, timeout):
                raise AssertionError("no %r event in %ss; events %s; log:\n%s" % (name, timeout, self.events,
                                                                               self.log_text()))
            return find()

    def names(self, after: int = 0) -> list:
        with self._cond:
            return [e["ev"] for e in self.events[after:] if e["ev"] != "harness_up"]

    def log_text(self) -> str:
        return "\n".join(self.logs[-60:])

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"id": 0, "op": "exit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._thread.join(2)


class FakeModem:
    """The pty master, answering each command from `replies` (cmd -> list of lines, or a callable, or None = silent)."""

    def __init__(self, replies: dict | None = None, echo: bool = True):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.echo = echo
        self.replies = {"AT+CREG?": ["+CREG: 1,1", "OK"], "AT+CSQ": ["+CSQ: 17,0", "OK"], "AT+DDET=1": ["ERROR"]}
        self.replies.update(replies or {})
        self.commands: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def send(self, data):
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def urc(self, *lines):
        self.send("".join("\r\n%s\r\n" % ln for ln in lines))

    def _serve(self):
        import select
        buf = b""
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if not r:
                continue
            try:
                buf += os.read(self.master, 1024)
            except OSError:
                return
            while b"\r" in buf:
                raw, buf = buf.split(b"\r", 1)
                cmd = raw.decode(errors="replace").strip()
                if not cmd:
                    continue
                self.seen.append(cmd)
                self.commands.put(cmd)
                reply = self.replies.get(cmd, ["OK"])
                if callable(reply):
                    reply = reply(cmd)
                if reply is None:
                    continue
                if self.echo:
                    self.send(cmd + "\r")
                if cmd == "ATE0":
                    self.echo = False
                self.urc(*reply)

    def wait_command(self, cmd: str, timeout: float = 5) -> None:
        end = time.monotonic() + timeout
        while cmd not in self.seen:
            if time.monotonic() > end:
                raise AssertionError("modem never got %r (got %s)" % (cmd, self.seen))
            time.sleep(0.02)

    def close(self):
        self._stop = True
        self._thread.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def rig():
    made = []

    def make(replies=None, timings=None, start=True, echo=True, **kw):
        modem = FakeModem(replies, echo=echo)
        line = MpyGsm(modem.path, timings, **kw)
        made.append((line, modem))
        if start:
            assert line.call("start", timeout=15) is True, line.log_text()
        return line, modem

    yield make
    for line, modem in made:
        line.close()
        modem.close()


def test_start_configures_the_modem_and_tracks_registration(rig):
    line, modem = rig(timings={"poll_ms": 60000})  # no AT+CREG? polls while URCs are checked
    for cmd in ("AT", "ATE0", "AT+CLIP=1", "AT+CLCC=1", "AT+CREG=1", "AT+DDET=1", "AT+CLTS=1", "AT+CREG?", "AT+CSQ"):
        assert cmd in modem.seen
    assert modem.seen.index("ATE0") < modem.seen.index("AT+CLIP=1")
    st = line.call("status")
    assert st == {"kind": "gsm", "ready": True, "reg": 1, "csq": 17, "calls": 0, "garbage": 0}
    modem.urc("+CREG: 5")  # URC form: stat only
    modem.urc("+CREG: 2,1,\"00C3\",\"1234\"")  # query form with n=2: n,stat,lac,ci
    time.sleep(0.2)
    assert line.call("status")["reg"] == 1
    modem.urc("+CREG: 3,\"00C3\",\"1234\"")  # URC form with n=2: stat,lac,ci
    time.sleep(0.2)
    assert line.call("status")["reg"] == 3


def test_urcs_while_a_command_is_pending_go_to_the_call_logic(rig):
    def cclk(cmd):
        modem.urc("RING", "+CREG: 5")  # unsolicited codes in the middle of the exchange
        modem.urc('+CLIP: "+380501234567",145,"",0,"",0')
        return ['+CCLK: "16/07/21,09:00:00+12"', "OK"]

    line, modem = rig({"AT+CCLK?": cclk})
    assert line.call("clock") == 1469080800  # 2016-07-21 09:00 local at UTC+3 (12 quarter hours) = 06:00 UTC
    ring = line.wait_event("ring", 3)
    assert ring["arg"] == "+380501234567"
    assert line.call("status")["reg"] == 5
    assert line.call("status")["calls"] == 1
    assert line.names().count("ring") == 1


def test_info_lines_go_to_the_command_that_expects_them(rig):
    line, modem = rig({"AT+CGSN": ["867567031234567", "OK"], "AT+CSQ": ["+CREG: 1", "+CSQ: 9,0", "OK"]})
    assert line.call("cmd", "AT+CGSN", "") == ["867567031234567"]
    assert line.call("cmd", "AT+CSQ", "+CSQ:") == ["+CSQ: 9,0"]
    assert line.call("status")["garbage"] == 0


def test_clock_without_network_time_is_none(rig):
    line, modem = rig({"AT+CCLK?": ['+CCLK: "04/01/01,00:01:05+00"', "OK"]})
    assert line.call("clock") is None
    modem.replies["AT+CCLK?"] = ['+CCLK: "80/01/06,00:00:12+00"', "OK"]
    assert line.call("clock") is None
    modem.replies["AT+CCLK?"] = ['+CCLK: "24/02/29,23:30:00-16"', "OK"]  # UTC-4
    assert line.call("clock") == 1709249400 + 4 * 3600


def test_garbage_is_skipped_counted_and_alarmed(rig):
    line, modem = rig()
    modem.send(b"\x00\xff\xfe\x81\r\n")
    modem.urc("+CLCC: 1,0")  # truncated
    modem.urc("hello world")  # unknown
    modem.send(b"\x13\x88\xf0RING\r\n")  # noise glued to a real line: counted, the RING still counts
    modem.urc('+CLIP: "+380671112233",145')
    assert line.wait_event("ring", 3)["arg"] == "+380671112233"
    assert line.call("status")["garbage"] == 4
    assert "alarm" not in line.names()
    modem.send(b"\xff" * 300 + b"\r\n")  # longer than the line buffer
    for _ in range(8):
        modem.send(b"#%&\x01\r\n")
    alarm = line.wait_event("alarm", 3)
    assert alarm["arg"][0] == "modem_garbage"
    assert line.call("status")["garbage"] == 13
    assert line.call("cmd", "AT") == []  # still answering


def test_clcc_with_extra_trailing_fields_rings_with_the_number(rig):
    line, modem = rig()
    modem.urc('+CLCC: 1,1,4,0,0,"+380509876543",145,"",,0,1,"x"')
    ring = line.wait_event("ring", 2)
    assert ring["arg"] == "+380509876543" and ring["ms"] < 10_000
    modem.urc('+CLCC: 1,1,6,0,0,"+380509876543",145,"",,0')
    line.wait_event("hangup", 2)
    assert line.names() == ["ring", "hangup"]


def test_ring_without_caller_id_then_rings_stop(rig):
    line, modem = rig()
    t0 = time.monotonic()
    modem.urc("RING")
    ring = line.wait_event("ring", 3)
    assert ring["arg"] is None and time.monotonic() - t0 >= 0.4  # waited caller_id_ms for +CLIP
    line.wait_event("hangup", 4)  # no further RING for ring_gap_ms
    assert time.monotonic() - t0 >= 1.5


def test_answer_and_far_hangup(rig):
    line, modem = rig()
    modem.urc("RING", '+CLIP: "102",129')
    assert line.wait_event("ring", 2)["arg"] == "102"
    assert line.call("answer") is True
    modem.urc("NO CARRIER")
    line.wait_event("hangup", 2)
    assert line.call("status")["calls"] == 0
    assert line.call("answer") is False  # nothing rings


def test_dial_results(rig):
    outcomes = {}

    def atd(cmd):
        number = cmd[3:-1]
        script = outcomes[number]
        threading.Timer(0.1, modem.urc, script).start()
        return ["OK"]

    line, modem = rig()
    for number, script in {
        "+380441": ['+CLCC: 1,0,2,0,0,"+380441",145,""', '+CLCC: 1,0,3,0,0,"+380441",145,""',
                    '+CLCC: 1,0,0,0,0,"+380441",145,""'],
        "+380442": ['+CLCC: 1,0,2,0,0,"+380442",145,""', '+CLCC: 1,0,6,0,0,"+380442",145,""', "BUSY"],
        "+380443": ["NO ANSWER"],
        "+380444": ['+CLCC: 1,0,6,0,0,"+380444",145,""', "NO CARRIER"],
        "+380445": ['+CLCC: 1,0,3,0,0,"+380445",145,""'],
    }.items():
        outcomes[number] = script
        modem.replies["ATD%s;" % number] = atd
    assert line.call("dial", "+380441", 3) == "answered"
    assert line.call("status")["calls"] == 1
    modem.urc('+CLCC: 1,0,6,0,0,"+380441",145,""', "NO CARRIER")
    line.wait_event("hangup", 2)
    assert line.names().count("hangup") == 1
    assert line.call("dial", "+380442", 3) == "busy"
    assert line.call("dial", "+380443", 3) == "no_answer"
    assert line.call("dial", "+380444", 3) == "failed"
    t0 = time.monotonic()
    assert line.call("dial", "+380445", 1) == "no_answer"  # our ring timeout
    assert 0.9 < time.monotonic() - t0 < 10  # waited for the ring timeout (the upper bound: not for ever)
    assert "ATH" in modem.seen[-3:]
    n = len(modem.seen)
    for bad in ("+38044;ATH", "12a", "", "+", "+380 44"):
        assert line.call("dial", bad, 1) == "failed"
    assert len(modem.seen) == n, "a refused number never reaches the modem"
    assert line.call("status")["calls"] == 0


def test_command_timeouts_and_errors(rig):
    line, modem = rig({"AT+CCLK?": None, "AT+FOO": ["+CME ERROR: 100"]})
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="ModemTimeout"):
        line.call("cmd", "AT+CCLK?", "+CCLK:", 500)
    assert 0.4 < time.monotonic() - t0 < 10  # waited for the 500 ms timeout, not for ever
    with pytest.raises(RuntimeError, match="CME ERROR: 100"):
        line.call("cmd", "AT+FOO")
    assert line.call("clock") is None  # times out, returns None
    assert line.call("status")["ready"] is True


def test_unresponsive_modem_is_reset_through_the_hook(rig):
    line, modem = rig(reset_hook=True)
    silent = {"on": False}

    def maybe(reply):
        return lambda cmd: None if silent["on"] else reply

    for cmd, reply in (("AT", ["OK"]), ("AT+CSQ", ["+CSQ: 17,0", "OK"]), ("AT+CREG?", ["+CREG: 1,1", "OK"])):
        modem.replies[cmd] = maybe(reply)
    n = len(line.events)
    silent["on"] = True
    alarm = line.wait_event("alarm", 6, after=n)
    assert alarm["arg"][0] == "modem_unresponsive"
    assert line.call("status")["ready"] is False
    line.wait_event("reset_hook", 5, after=n)
    silent["on"] = False
    modem.urc("RDY", "Call Ready")
    rec = line.wait_event("alarm", 8, after=n, pred=lambda e: e["arg"][0] == "modem_recovered")
    assert rec and line.call("status")["ready"] is True
    assert "AT+CFUN=1,1" not in modem.seen, "the hook resets the modem, not AT+CFUN"


def test_spontaneous_restart_reinitialises(rig):
    line, modem = rig()
    modem.seen.clear()
    modem.echo = True  # a restarted modem echoes again
    n = len(line.events)
    modem.urc("RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready")
    assert line.wait_event("alarm", 3, after=n)["arg"][0] == "modem_rebooted"
    line.wait_event("alarm", 5, after=n, pred=lambda e: e["arg"][0] == "modem_recovered")
    assert "ATE0" in modem.seen and "AT+CLCC=1" in modem.seen
    assert line.call("status")["garbage"] == 0
