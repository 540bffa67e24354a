"""Replay a fuzz corpus through every decoder of the contract, on whichever interpreter runs this.

The same file runs under CPython (imported by tests/protocols/test_fuzz_corpus.py) and under the
real `micropython` binary (as a script), so both judge the very same bytes. Corpus file: one input
a line, `<flags> <hex>`; flag `s` also feeds the input as text (it is valid UTF-8). Each input goes
through messages.decode for every kind, routing.load and routing.unseal; each call prints one line
`<line> <op> <verdict>`, the verdict being `ok`, `E <path as hex>` (the contract's error), `U <path>`
(a contract error from a decoder's safety net: an exception the decoder did not expect) or
`X <exception type>` (a foreign exception). The last line is `fuzz: N inputs`.

Usage on MicroPython, from the repository root:
    micropython tests/vectors/fuzz_replay.py CORPUS_FILE
"""

import binascii
import sys

from protocols import messages, routing

KEY = "1111111111111111111111111111111111111111111111111111111111111111"
GATEWAY = "gw-toretsk-1"
TEXT_KINDS = ("state", "events", "cmd")  # kinds also fed the input as str
_UNEXPECTED = getattr(messages, "UNEXPECTED", "\x00")  # how a safety net's reason starts


def _verdict(fn, args, error):
    try:
        fn(*args)
        return "ok"
    except error as e:
        tag = "U " if e.reason.startswith(_UNEXPECTED) else "E "
        return tag + _hex(e.path)
    except Exception as e:  # a foreign exception (RecursionError and MemoryError too): what this counts
        return "X " + type(e).__name__


def _hex(path):
    """A path as hex of its UTF-8: paths can hold any character, spaces and newlines too."""
    try:
        raw = path.encode()
    except UnicodeError:  # CPython: a lone surrogate from an escape
        raw = path.encode("utf-8", "surrogatepass")
    return binascii.hexlify(raw).decode() or "-"


def judge(data, as_text):
    """(op, verdict) for every decoder given `data` (bytes)."""
    out = []
    for kind in messages.KINDS:
        out.append(("decode." + kind, _verdict(messages.decode, (kind, data), messages.MessageError)))
    if as_text:
        text = data.decode()
        for kind in TEXT_KINDS:
            out.append(("decode_str." + kind, _verdict(messages.decode, (kind, text), messages.MessageError)))
    out.append(("load", _verdict(routing.load, (data,), routing.TableError)))
    out.append(("unseal", _verdict(routing.unseal, (data, KEY, GATEWAY, 0), routing.TableError)))
    return out


def replay(lines, emit):
    n = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        flags, hexed = line.split(" ", 1) if " " in line else (line, "")
        data = binascii.unhexlify(hexed)
        for op, verdict in judge(data, "s" in flags):
            emit(str(n) + " " + op + " " + verdict)
        n += 1
    emit("fuzz: " + str(n) + " inputs")
    return n


def main(argv):
    with open(argv[1]) as f:  # line by line: the default heap is small
        replay(f, print)


if __name__ == "__main__":
    main(sys.argv)
