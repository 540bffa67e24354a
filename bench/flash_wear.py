"""Flash wear of the gateway's store: block erases and program operations per call record.

usage: python bench/flash_wear.py [CALLS [ACK_EVERY [MAX_RECORDS]]]    (defaults 1000 50 2000)

Runs the real firmware store (firmware/gw/store.py) on the MicroPython unix port over the emulated
flash (firmware/gw/blockdev.py): a fresh 1 MiB LittleFS image (256 x 4 KiB blocks), a 20 KiB table,
then CALLS call records with an ack of everything every ACK_EVERY records. Then, on a second fresh
image, the outbox is filled to MAX_RECORDS unacked records (uplink down) to show the space it takes.
The last line is `key=value` pairs.
"""

import os
import sys

IS_MPY = sys.implementation.name == "micropython"


def record(n):
    return {"t": "call", "start": 1469048400 + 60 * n, "port": "gsm1", "caller": "+38050%07d" % n,
            "route": "police-102", "outcome": "answered" if n % 4 else "failed", "target": "mariupol-102",
            "attempts": 1 + n % 2, "ring_s": n % 20, "talk_s": 30 + n % 200, "reason": "ok"}


def fresh(path):

    from gw.blockdev import FileBlockDev, mount

    try:
        os.remove(path)
    except OSError:
        pass
    dev = FileBlockDev(path, 4096, 256)
    mount(dev, "/flash")
    return dev


def measure(work, calls, every, max_records):
    import vfs

    from gw.store import Store

    dev = fresh(work + "/wear.img")
    s = Store.open("/flash", max_records=max_records)
    s.save_table(b"x" * 20480, 1)
    w0, e0, b0 = dev.writes, dev.erases, dev.bytes_written
    for n in range(calls):
        s.append(record(n))
        if (n + 1) % every == 0:
            s.ack(s.last_seq)
    ew, ee, eb = dev.writes - w0, dev.erases - e0, dev.bytes_written - b0
    vfs.umount("/flash")

    dev = fresh(work + "/full.img")
    s = Store.open("/flash", max_records=max_records)
    s.save_table(b"x" * 20480, 1)
    for n in range(max_records + 50):
        s.append(record(n))
    st = os.statvfs("/flash")
    print("outbox full: %d unacked records, %d call records dropped, %d of %d blocks free"
          % (s.unacked(), s.counters["dropped"], st[3], st[2]))
    print("calls=%d ack_every=%d erases=%d writes=%d erases_per_call=%.3f writes_per_call=%.2f "
          "bytes_per_call=%d full_outbox_free_blocks=%d blocks=%d"
          % (calls, every, ee, ew, ee / calls, ew / calls, eb // calls, st[3], st[2]))


def main():
    args = [int(a) for a in sys.argv[1:]]
    calls, every, max_records = (args + [1000, 50, 2000][len(args):])[:3]
    if IS_MPY:
        measure(os.getenv("FLASH_WEAR_DIR") or "/tmp", calls, every, max_records)
        return
    import subprocess
    import tempfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    from emulator import micropython

    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, MICROPYPATH=micropython.search_path(repo / "firmware"), FLASH_WEAR_DIR=work)
        cmd = micropython.command(__file__, str(calls), str(every), str(max_records), heap="220K")
        sys.exit(subprocess.run(cmd, env=env).returncode)


if __name__ == "__main__":
    main()
