"""Drive one gw.gsm.GsmLine on MicroPython from the host, over stdin/stdout JSON lines.

    micropython gsm_harness.py <pty path> '<settings json>'

settings: {"timings": {attr: ms, ...}, "reset_hook": bool, "reset_ms": int}
stdin:  {"id": n, "op": "start"|"cmd"|"dial"|"answer"|"hangup"|"status"|"clock"|"menu"|"exit", "args": [...]}
        menu: [prompt, timeout_s, tries] runs gw.menu on the answered call -> {"keys", "prompts", "gone"}
stdout: {"id": n, "ok": true, "result": ...} | {"id": n, "ok": false, "error": "ModemTimeout: ..."}
        {"ev": "ring"|"hangup"|"dtmf"|"alarm"|"reset_hook", "arg": ..., "ms": ticks}
        {"log": "..."}
Every operation runs as its own task, so a dial can be pending while the host sends more.
"""

import asyncio
import json
import sys
import time

from gw.uart_unix import open_pty

T0 = time.ticks_ms()


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")


def log(*args):
    out({"log": " ".join(str(a) for a in args)})


MENU = {"session": None, "gone": asyncio.Event()}  # the gw.menu session in progress, the caller's hang-up


def listener(line, event, arg):
    if event == "hangup":
        MENU["gone"].set()
    elif event in ("dtmf", "played") and MENU["session"] is not None:
        MENU["session"].on_event(event, arg)
    out({"ev": event, "arg": list(arg) if isinstance(arg, tuple) else arg, "ms": time.ticks_diff(time.ticks_ms(), T0)})


async def run_op(line, req):
    op, args = req["op"], req.get("args", [])
    try:
        if op == "start":
            await line.start()
            res = line.ready
        elif op == "cmd":
            res = await line.cmd(*args)
        elif op == "dial":
            res = await line.dial(*args)
        elif op == "answer":
            res = await line.answer()
        elif op == "hangup":
            res = await line.hangup()
        elif op == "status":
            res = line.status()
        elif op == "clock":
            res = await line.clock_query()
        elif op == "menu":
            res = await run_menu(line, *args)
        else:
            raise ValueError("unknown op " + op)
        out({"id": req["id"], "ok": True, "result": res})
    except Exception as e:
        out({"id": req["id"], "ok": False, "error": "%s: %s" % (type(e).__name__, e)})


async def run_menu(line, prompt, timeout_s, tries):
    from collections import namedtuple

    from gw.menu import MenuSession

    menu = namedtuple("Menu", ("id", "prompt", "timeout_s", "tries", "default", "options"))
    session = MENU["session"] = MenuSession(line, menu("hall", prompt, timeout_s, tries, "0", {}), log)
    try:
        keys = await session.run(MENU["gone"])
    finally:
        MENU["session"] = None
    return {"keys": keys, "prompts": session.prompts, "gone": MENU["gone"].is_set()}


async def main(path, settings):
    reader, writer = open_pty(path)
    reset_ms = settings.get("reset_ms", 300)

    async def reset_hook():
        out({"ev": "reset_hook", "arg": None, "ms": time.ticks_diff(time.ticks_ms(), T0)})
        await asyncio.sleep_ms(reset_ms)

    if settings.get("kind") == "fxo":
        from gw.fxo import FxoLine

        line = FxoLine("fxo1", reader, writer, log=log, reset_hook=reset_hook if settings.get("reset_hook") else None)
    else:
        from gw.gsm import GsmLine

        line = GsmLine("gsm1", reader, writer, log=log, reset_hook=reset_hook if settings.get("reset_hook") else None)
    for k, v in settings.get("timings", {}).items():
        setattr(line, k, v)
    line.listener = listener
    stdin = asyncio.StreamReader(sys.stdin.buffer)
    out({"ev": "harness_up", "arg": None, "ms": 0})
    while True:
        raw = await stdin.readline()
        if not raw:
            return
        req = json.loads(raw)
        if req["op"] == "exit":
            return
        asyncio.create_task(run_op(line, req))


asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
