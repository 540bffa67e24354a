"""File-backed flash for the emulated board (MicroPython unix port), with power cuts.

`FileBlockDev` is a block device for `vfs.VfsLfs2` (extended interface: `readblocks(n, buf, off)`,
`writeblocks(n, buf, off)`, `ioctl(op, arg)`) backed by a host file that emulates NOR flash
(erased = 0xFF). It counts program operations (`writes`) and block erases (`erases`) and keeps
them in `stats_path` as one JSON line, rewritten in place after every write or erase (cumulative
over the life of the image: they are loaded back when the device is created again).

Power cuts: the host rig writes `ctl_path`, whitespace-separated `key value` pairs:

    cut_after N   lose power at the N-th write-or-erase from the moment the file is (re)read
    cut_at N      lose power at the N-th write-or-erase since this device was created (boot)
    seed S        picks how much of the interrupted operation lands (default 0)

The file is re-read only when its (size, mtime, inode) change, so checking it costs one stat.
On the cut the operation is applied partially (a write: a prefix of its bytes, possibly none;
an erase: the block left half-erased, 0xFF up to a split point and old data after it), both
decided by (seed, op number) so a sweep explores cases deterministically. Then the board
"loses power": the stats are flushed, `fired <op>` is written to `ctl_path` (so the next boot
runs without a cut unless the rig arms one again), `POWER-CUT` is printed and the process stops
executing forever. The rig kills it (SIGKILL) and boots again on the same image.

`mount(dev, path)` mounts LittleFS v2 at `path` (the unix port cannot mount at "/"), formatting
the image when it does not mount (the store is then born on the next `Store` open), with the
LittleFS options of LFS_OPTIONS (see there).
"""

import json
import os
import time

try:
    import vfs
except ImportError:  # CPython: the device is usable, mount() is not
    vfs = None



def _mix(seed, n):
    x = (seed * 2654435761 + n * 40503 + 0x9E3779B9) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 2246822519) & 0xFFFFFFFF
    return x ^ (x >> 13)


class FileBlockDev:
    def __init__(self, path, block_size=4096, blocks=256, ctl_path=None, stats_path=None):
        self.path = path
        self.block_size = block_size
        self.blocks = blocks
        self.ctl_path = ctl_path
        self.stats_path = stats_path
        self.writes = 0
        self.erases = 0
        self.bytes_written = 0
        self.ops = 0  # writes + erases since this device was created
        self.cut_at = 0  # absolute op number that loses power, 0 = never
        self.seed = 0
        self._ctl_sig = None
        self._stats = None
        self.formatted = False  # set by mount()
        self._ff = memoryview(b"\xff" * block_size)
        size = block_size * blocks
        try:
            have = os.stat(path)[6]
        except OSError:
            have = 0
        if have < size:
            with open(path, "ab") as f:
                fill = b"\xff" * block_size
                left = size - have
                while left > 0:
                    f.write(fill[: min(left, block_size)])
                    left -= block_size
        self.f = open(path, "r+b")
        if stats_path:
            try:
                with open(stats_path) as f:
                    st = json.loads(f.read())
                self.writes = st.get("writes", 0)
                self.erases = st.get("erases", 0)
                self.bytes_written = st.get("bytes", 0)
            except (OSError, ValueError):
                pass
            self._stats = open(stats_path, "wb")
            self._save_stats()
        self._check_ctl()

    # -- host-side control -------------------------------------------------------------

    def _save_stats(self):
        if self._stats is None:
            return
        self._stats.seek(0)
        line = '{"writes": %d, "erases": %d, "bytes": %d}\n' % (self.writes, self.erases, self.bytes_written)
        self._stats.write(line.encode())  # counters only grow: the line never gets shorter
        self._stats.flush()

    def _check_ctl(self):
        if not self.ctl_path:
            return
        try:
            st = os.stat(self.ctl_path)
        except OSError:
            self._ctl_sig = None
            return
        sig = (st[6], st[8], st[1])
        if sig == self._ctl_sig:
            return
        self._ctl_sig = sig
        try:
            with open(self.ctl_path) as f:
                words = f.read().split()
        except OSError:
            return
        for i in range(0, len(words) - 1, 2):
            try:
                v = int(words[i + 1])
            except ValueError:
                continue
            k = words[i]
            if k == "cut_after":
                self.cut_at = self.ops + v if v > 0 else 0
            elif k == "cut_at":
                self.cut_at = v if v > 0 else 0
            elif k == "seed":
                self.seed = v
            elif k == "fired":
                self.cut_at = 0

    def _next_op(self):
        """Count one write-or-erase; True when power is lost during it."""
        self.ops += 1
        self._check_ctl()
        return self.cut_at and self.ops >= self.cut_at

    def _power_cut(self):
        self._save_stats()
        try:
            with open(self.ctl_path, "w") as f:
                f.write("fired %d\n" % self.ops)
        except (OSError, TypeError):
            pass
        print("POWER-CUT")
        try:
            import sys

            sys.stdout.flush()
        except Exception:
            pass
        while True:  # no further firmware code runs; the rig kills the process
            time.sleep(1)

    # -- block device protocol ---------------------------------------------------------

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.block_size + off)
        got = self.f.readinto(buf)
        if got is not None and got < len(buf):  # never happens on a sized image
            for i in range(got, len(buf)):
                buf[i] = 0xFF

    def writeblocks(self, n, buf, off=None):
        if off is None:  # simple interface: erase then program whole blocks
            for i in range(len(buf) // self.block_size):
                self.ioctl(6, n + i)
            off = 0
        cut = self._next_op()
        if cut:
            buf = bytes(buf)[: _mix(self.seed, self.ops) % (len(buf) + 1)]
        self.f.seek(n * self.block_size + off)
        self.f.write(buf)
        self.writes += 1
        self.bytes_written += len(buf)
        if cut:
            self._power_cut()
        self._save_stats()

    def erase(self, n):
        cut = self._next_op()
        bs = self.block_size
        keep = _mix(self.seed, self.ops) % (bs + 1) if cut else bs
        self.f.seek(n * bs)
        self.f.write(self._ff[:keep])
        self.erases += 1
        if cut:
            self._power_cut()
        self._save_stats()

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase
            self.erase(arg)
            return 0
        if op == 3:  # sync
            self.f.flush()
            return 0
        if op in (1, 2):  # init, deinit
            return 0
        return None

    def is_blank(self, blocks=2):
        """True when the first `blocks` blocks are erased (a fresh image)."""
        buf = bytearray(self.block_size)
        for n in range(blocks):
            self.readblocks(n, buf)
            if buf != b"\xff" * self.block_size:
                return False
        return True


# readsize=128 makes MicroPython's LittleFS cache 512 bytes (4 x max(readsize, progsize)) instead of 128, and
# a file up to min(cache, block/8) = 512 bytes is then kept inline in its directory's metadata log: rewriting
# it appends a commit there instead of copying a data block (an erase). The store's record slots rely on it
# (gw/outbox.py). Read size is no on-flash format parameter: an image made with the defaults mounts as is.
LFS_OPTIONS = {"readsize": 128}


def mount(dev, path="/flash", **lfs_args):
    """Mount `dev` as LittleFS v2 at `path` (options: LFS_OPTIONS, then lfs_args), formatting a blank or
    unreadable image.

    Returns `path` (the store's root); `dev.formatted` tells whether the image was formatted.
    An image that was not blank is kept aside as `<image>.corrupt` (host file) before it is
    formatted, for the post-mortem."""
    dev.formatted = False
    lfs_args = dict(LFS_OPTIONS, **lfs_args)
    try:
        vfs.mount(vfs.VfsLfs2(dev, **lfs_args), path)
        return path
    except OSError as e:
        if e.errno == 1:  # EPERM: the mount point is taken; never format for that
            raise
        blank = dev.is_blank() if hasattr(dev, "is_blank") else True
        if not blank:
            print("blockdev: mount failed (%r), formatting a non-blank image" % (e,))
            try:
                with open(dev.path, "rb") as src, open(dev.path + ".corrupt", "wb") as dst:
                    while True:
                        b = src.read(4096)
                        if not b:
                            break
                        dst.write(b)
            except (OSError, AttributeError):
                pass
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev, **lfs_args), path)
    dev.formatted = True
    return path
