"""The +CLIP -> ATD path on MicroPython: the real gw.gsm lines (on fake UARTs that answer like a modem) and the real
call machine. Prints one JSON line per check (tests/firmware/test_dial_at_once.py)."""

import asyncio
import json
import sys

from machine_fakes import Hw, Store

from gw.calls import CallMachine
from gw.gsm import GsmLine
from protocols import routing

TABLE = {"schema": 1, "gateway": "gw-test-1", "version": 1, "tz": "UTC0",
         "targets": {"a": {"number": "+3801", "via": ["gsm2"], "ring_timeout_s": 2}},
         "routes": [{"id": "main", "port": "gsm1", "targets": ["a"]}]}
SPIN = [0]  # turns of a task that does nothing else: it runs whenever the loop switches tasks


class Uart:
    """A modem's UART: what the test feeds is read by the line's reader; commands are answered OK (an ATD's call
    is then picked up: +CLCC active)."""

    def __init__(self):
        self.chunks, self.ready, self.written, self.read_spin = [], asyncio.Event(), [], None

    def feed(self, data):
        self.chunks.append(data)
        self.ready.set()

    async def readinto(self, buf):
        while not self.chunks:
            await self.ready.wait()
            self.ready.clear()
        data = self.chunks.pop(0)
        buf[:len(data)] = data
        if b"+CLIP" in data and self.read_spin is None:
            self.read_spin = SPIN[0]  # the task switches so far, as the line with the caller id is read
        return len(data)

    def write(self, data):
        text = bytes(data).decode().strip()
        self.written.append([text, SPIN[0]])
        answer = {"AT+CREG?": "+CREG: 1,1\r\n", "AT+CSQ": "+CSQ: 20,0\r\n"}.get(text, "")
        self.feed(("\r\n" + answer + "OK\r\n").encode())
        if text.startswith("ATD"):
            self.feed(b'\r\n+CLCC: 1,0,0,0,0,"' + text[3:-1].encode() + b'",145\r\n')

    async def drain(self):
        await asyncio.sleep_ms(0)


class Clock:
    def ms(self):
        import time
        return time.ticks_ms()

    def since_ms(self, t0):
        import time
        return time.ticks_diff(time.ticks_ms(), t0)

    def now(self):
        return 1780000000


async def until(cond, ms=3000):
    while not cond() and ms > 0:
        await asyncio.sleep_ms(10)
        ms -= 10


async def spin():
    while True:
        SPIN[0] += 1
        await asyncio.sleep_ms(0)


def atd(uart):
    return [w for w in uart.written if w[0].startswith("ATD")]


async def check(name):
    uarts, logs = {"gsm1": Uart(), "gsm2": Uart()}, []
    lines = {n: GsmLine(n, u, u, log=lambda *a: None) for n, u in uarts.items()}
    for line in lines.values():
        await line.start()
    store, hw = Store(), Hw()
    table = routing.load(json.dumps(TABLE))
    logged = []
    m = CallMachine(lines, store, Clock(), hw, lambda: table, log=lambda *a: logged.append(" ".join(a)))
    m.dial_at_once = name != "the_long_way"
    spinner = asyncio.create_task(spin())
    clip = b'\r\nRING\r\n\r\n+CLIP: "+380501",145,"",0,"",0\r\n'
    if name == "answered":
        uarts["gsm1"].feed(clip)
        await until(lambda: hw.bridges)
        uarts["gsm1"].feed(b"\r\nNO CARRIER\r\n")  # the caller ends the call
        await until(lambda: store.records and not m.by_line)
    elif name == "caller_leaves_at_once":  # gone in the same read as its caller id: the ATD written is ended
        uarts["gsm1"].feed(clip + b"\r\nNO CARRIER\r\n")
        await until(lambda: store.records and not m.by_line)
        uarts["gsm1"].feed(clip.replace(b"+380501", b"+380502"))  # gsm2 is free for the next call
        await until(lambda: len(store.records) == 2)
        await until(lambda: hw.bridges)
        uarts["gsm1"].feed(b"\r\nNO CARRIER\r\n")
        await until(lambda: not m.by_line)
    elif name == "the_long_way":  # dial_at_once off (the boards default to on): the ATD after the call machine's task ran
        uarts["gsm1"].feed(clip)
        await until(lambda: hw.bridges)
        uarts["gsm1"].feed(b"\r\nNO CARRIER\r\n")
        await until(lambda: store.records and not m.by_line)
    elif name == "store_out_of_heap":  # the record's write meets a MemoryError (the outbox's batch, gw.outbox)
        def append(rec):
            raise MemoryError("memory allocation failed, allocating 688 bytes")

        store.append = append
        uarts["gsm1"].feed(clip)
        await until(lambda: hw.bridges)
        uarts["gsm1"].feed(b"\r\nNO CARRIER\r\n")
        await until(lambda: not m.by_line)
        logs.extend(x for x in logged if "not stored" in x)
    spinner.cancel()
    print(json.dumps({"name": name, "records": store.records, "clip_read_spin": uarts["gsm1"].read_spin,
                      "atd": atd(uarts["gsm2"]), "gsm2": [w[0] for w in uarts["gsm2"].written],
                      "logs": logs + [x for x in logged if "clip_atd_us=" in x], "lines_in_use": list(m.by_line)}))


for arg in sys.argv[1:]:
    asyncio.run(check(arg))
