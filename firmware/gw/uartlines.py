"""One UART's bytes to text lines, for every line driver (GSM AT, FXO module).

A UART delivers a line in pieces and noise between lines: bytes are assembled up to CR or LF in
a preallocated buffer; a line with bytes outside printable ASCII, or longer than the buffer, is
reported as junk, and a clean tail after the noise (noise glued to a real line) is still given
as a line.
"""

import asyncio


async def read_lines(reader, on_line, on_junk, log, name, size=200, idle_ms=100):
    """Forever: `on_line(text, clean)` for each line (clean: no noise was cut off its front),
    `on_junk(raw bytes)` for each bad one."""
    buf, line = bytearray(128), bytearray(size)
    mv = memoryview(line)
    n, over = 0, False
    while True:
        try:
            got = await reader.readinto(buf)
        except Exception as e:  # the UART / pty went away
            log("%s: read: %r" % (name, e))
            got = 0
        if not got:  # a hung-up pty polls readable and reads nothing: do not spin
            await asyncio.sleep_ms(idle_ms)
            continue
        for i in range(got):
            c = buf[i]
            if c == 10 or c == 13:  # CR LF, and the CR after an echoed command
                if n or over:
                    _feed(mv, n, over, on_line, on_junk)
                n, over = 0, False
            elif n < size:
                line[n] = c
                n += 1
            else:
                over = True


def _feed(mv, end, over, on_line, on_junk):
    bad = -1
    for i in range(end):
        if not 32 <= mv[i] <= 126:
            bad = i
    start = 0
    if over or bad >= 0:  # count it, then salvage a clean tail
        on_junk(bytes(mv[:min(end, 40)]))
        start = end if over else bad + 1
    if start < end:
        on_line(str(mv[start:end], "ascii"), start == 0)
