"""HMAC-SHA256 from hashlib alone: MicroPython has no `hmac` module, and
one implementation must serve both the controller and the firmware."""

import binascii
import hashlib

_BLOCK = 64
def _xor_tables():
    ipad = bytearray(256)
    opad = bytearray(256)
    for i in range(256):
        ipad[i] = i ^ 0x36
        opad[i] = i ^ 0x5C
    return bytes(ipad), bytes(opad)


_IPAD, _OPAD = _xor_tables()


def _translate(key, table):
    if _TRANSLATE:  # CPython: the same mapping in C (a rollout signs a table per gateway)
        return key.translate(table)
    out = bytearray(_BLOCK)
    for i in range(_BLOCK):
        out[i] = table[key[i]]
    return bytes(out)


_TRANSLATE = hasattr(bytes, "translate")  # MicroPython's bytes has no translate


def to_key(key):
    """A key given as bytes or as hex text -> bytes."""
    if type(key) is str:
        try:
            key = binascii.unhexlify(key)
        except Exception:
            raise ValueError("key must be bytes or hex text")
    key = bytes(key)
    if len(key) < 16:
        raise ValueError("key must be at least 16 bytes (the contract uses 32)")
    return key


def hmac_sha256(key, msg):
    """RFC 2104 HMAC-SHA256 of `msg` under `key`, as lowercase hex."""
    mac = Hmac256(key)
    mac.update(msg)
    return mac.hexdigest()


class Hmac256:
    """Incremental HMAC-SHA256 (`update` as the bytes come, then `hexdigest`): a board checks a
    table it streams to flash without ever holding the whole body."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key + b"\x00" * (_BLOCK - len(key))
        self._inner = hashlib.sha256(_translate(key, _IPAD))
        self._okey = _translate(key, _OPAD)

    def update(self, data):
        self._inner.update(data)

    def hexdigest(self):
        """The MAC as lowercase hex; call it once (MicroPython's digest() ends the hash)."""
        outer = hashlib.sha256(self._okey)
        outer.update(self._inner.digest())
        return binascii.hexlify(outer.digest()).decode()


def sha256_hex(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def same_digest(a, b):
    """Compare two hex digests in time independent of where they differ. Compared as bytes: indexing a
    str makes one-character strings, which MicroPython interns, and a new qstr can need its pool to
    double (~14 KB in one piece on the 64-bit port) at the moment a table is checked."""
    a, b = a.encode(), b.encode()
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
