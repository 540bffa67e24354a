"""UARTs of the emulated board: pty slaves read through asyncio streams (MicroPython unix port).

The host side (the emulated GSM network) keeps the pty master. The slave is
opened with plain `open()` (the unix port's FileIO is unbuffered and pollable,
so `asyncio` can wait on it), switched to raw mode, and given VMIN = VTIME = 0:
a read then returns at once with whatever bytes are there, so neither
`readinto()` nor `readline()` on the stream can block the event loop (there is
no `fcntl` on the unix port to set O_NONBLOCK instead).

A hung-up pty (the host closed its end) polls readable forever and reads 0
bytes: readers must treat a 0-byte read as "nothing now" and back off.
"""

import asyncio
import termios

# Indexes of VTIME / VMIN in the termios cc list on Linux (the unix port's
# termios module has no constants for them).
VTIME = getattr(termios, "VTIME", 5)
VMIN = getattr(termios, "VMIN", 6)


def open_pty(path):
    """Open the pty slave `path` raw and non-blocking; returns (StreamReader, StreamWriter)."""
    f = open(path, "r+b")
    fd = f.fileno()
    termios.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[6][VTIME] = 0
    attrs[6][VMIN] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return asyncio.StreamReader(f), asyncio.StreamWriter(f, {})
