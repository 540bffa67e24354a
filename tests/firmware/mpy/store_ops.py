"""Run flash-store operations on a file-backed LittleFS image (MicroPython unix port).

usage: store_ops.py WORKDIR [max=N] [seg=N] OP...
The image is WORKDIR/flash.img (1 MiB: 256 x 4 KiB), power cuts come from WORKDIR/ctl and the
block counters go to WORKDIR/stats (see gw/blockdev.py). Every run is one boot: mount, open the
store (boot count +1), then the OPs in order, each printing one line once it has returned:

    table:V:SIZE     save the table payload of version V     -> OK table V
    call:N:K         append the call records N .. N+K-1      -> OK call <seq> <n>   (one a record)
    ack:SEQ|ack:last ack up to SEQ                           -> OK ack <seq>
    counters:AT      append a counters record                -> OK counters <seq>
    alarm:LEN        append an alarm with a LEN-character detail -> OK alarm <seq>
    dump             the whole state                         -> STATE <json>
    wear:CALLS:EVERY append CALLS records, ack every EVERY    -> WEAR calls=.. erases=.. writes=..

Also importable on CPython (call_record, table_payload, run_op) for the host-side tests.
"""

import json
import sys

OUTCOMES = ("answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied")
ROUTES = ("police-102", "hotline-122", None, "info-505")


def call_record(n):
    """The call record number n (deterministic, so the host can recompute what was sent)."""
    o = OUTCOMES[n % 7]
    r = {"t": "call", "n": n, "start": 1469048400 + 60 * n, "port": "gsm%d" % (1 + n % 2),
         "caller": "+38050%07d" % n, "route": ROUTES[n % 4], "outcome": o, "target": None, "attempts": 0,
         "ring_s": n % 30, "talk_s": 0, "reason": "ok"}
    if o in ("answered", "failed", "abandoned"):
        r["target"] = "centre-%d" % (n % 3)
        r["attempts"] = 1 + n % 2
        if o == "answered":
            r["talk_s"] = 10 + n % 300
        if n % 5 == 0:
            r["tries"] = [["centre-9", "busy"], [r["target"], "answered" if o == "answered" else "no_answer"]]
    return r


def table_payload(version, size):
    head = '{"v": 1, "alg": "HS256", "sig": "%064x", "body": "' % version
    fill = "version %d " % version
    body = (fill * (size // len(fill) + 1))[: max(0, size - len(head) - 2)]
    return (head + body + '"}').encode()


def state(s):
    payload = s.load_table()
    import binascii

    return {"id": s.store_id, "boot": s.boot, "last_seq": s.last_seq, "acked_seq": s.acked_seq,
            "table_version": s.table_version(), "table_len": len(payload) if payload is not None else None,
            "table_crc": binascii.crc32(payload) & 0xFFFFFFFF if payload is not None else None,
            "pending": s.pending(100000, 1 << 30), "counters": s.counters, "notes": s.notes,
            "segs": [[g.first, g.last, g.records, g.size] for g in s._segs], "unacked": s.unacked()}


def run_op(s, op, out, dev=None):
    a = op.split(":")
    if a[0] == "table":
        s.save_table(table_payload(int(a[1]), int(a[2])), int(a[1]))
        out("OK table %s" % a[1])
    elif a[0] == "call":
        for n in range(int(a[1]), int(a[1]) + int(a[2])):
            seq = s.append(call_record(n))
            out("OK call %d %d" % (seq, n))
    elif a[0] == "ack":
        seq = s.last_seq if a[1] == "last" else int(a[1])
        s.ack(seq)
        out("OK ack %d" % seq)
    elif a[0] == "alarm":
        out("OK alarm %d" % s.append({"t": "alarm", "at": 1469100000, "code": "test", "detail": "x" * int(a[1])}))
    elif a[0] == "counters":
        out("OK counters %d" % s.counters_record(int(a[1])))
    elif a[0] == "dump":
        out("STATE " + json.dumps(state(s)))
    elif a[0] == "wear":
        calls, every = int(a[1]), int(a[2])
        w0, e0 = dev.writes, dev.erases
        for n in range(calls):
            s.append(call_record(n))
            if (n + 1) % every == 0:
                s.ack(s.last_seq)
        out("WEAR calls=%d erases=%d writes=%d erases_per_call=%.3f writes_per_call=%.2f"
            % (calls, dev.erases - e0, dev.writes - w0, (dev.erases - e0) / calls, (dev.writes - w0) / calls))
    else:
        raise ValueError("unknown op " + op)


def out(line):
    print(line)
    try:
        sys.stdout.flush()
    except AttributeError:
        pass


def main(argv):
    from gw.blockdev import FileBlockDev, mount
    from gw.store import Store

    work, kw, ops = argv[0], {}, []
    for a in argv[1:]:
        if a.startswith("max="):
            kw["max_records"] = int(a[4:])
        elif a.startswith("seg="):
            kw["seg_records"] = int(a[4:])
        else:
            ops.append(a)
    dev = FileBlockDev(work + "/flash.img", 4096, 256, ctl_path=work + "/ctl", stats_path=work + "/stats")
    root = mount(dev, "/flash")
    s = Store.open(root, **kw)
    out("BOOT %d %s" % (s.boot, s.store_id))
    for op in ops:
        run_op(s, op, out, dev)


if __name__ == "__main__":
    main(sys.argv[1:])
