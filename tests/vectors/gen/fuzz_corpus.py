"""Build the shared fuzz corpus that tests/vectors/fuzz_replay.py judges on both interpreters.

Deterministic: valid seeds (every message vector, states with ports, every record kind, the
routing vectors' tables, their signed envelopes), each mutated a few times by a seeded RNG (byte
flips, truncations, deletions, repeats, inserted floats / escapes / garbage / big numbers /
nesting), bodies mutated and signed again (so the table loader sees them behind a good
signature), plus hypothesis-generated JSON values and bytes (derandomized). Never calls the code
under test. Run from the repository root to write a corpus file:
`python tests/vectors/gen/fuzz_corpus.py OUT [COUNT]`.
"""

import binascii
import hashlib
import hmac
import json
import random
import sys
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1]
KEY = bytes.fromhex("11" * 32)
GATEWAY = "gw-toretsk-1"

SNIPPETS = [
    b"1.5", b"-0.0", b"1e5", b"1E400", b"-", b"NaN", b"-Infinity", b"01", b"1.", b".5", b"+1",
    b"99999999999999999999999", b"9007199254740993", b"1099511627776", b"-1",
    b"\\u035", b"\\u035g", b"\\ud800", b"\\udc00", b"\\ud83d\\ude00", b"\\uD800x", b"\\x", b"\\'", b"\\",
    b"\\u00e9", b"\\u0000", b"\\u1_23",
    b"\x00", b"\x01", b"\x0b", b"\x0c", b"\x1f", b"\x7f", b"\t", b"\n", b"\xff", b"\xfe", b"\x80", b"\xc0\x80",
    b"\xed\xa0\x80", b"\xed\xb0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xef\xbb\xbf", b"\xc3\xa9",
    b",", b",]", b",}", b"]", b"}", b"[", b"{", b"\"", b":", b"true", b"null", b"false", b"tru",
    b"[" * 40, b"{\"a\":" * 40, b"\"x\":1,", b"\"online\":true,", b"{1:2}", b"'a'", b" ", b"\r\n",
]


def _messages():
    doc = json.loads((VECTORS / "messages.json").read_text())
    out = []
    for case in doc["cases"]:
        if case["op"] in ("msg_valid", "msg_invalid", "msg_roundtrip") and "payload" in case:
            p = case["payload"]
            out.append(p.encode() if type(p) is str else json.dumps(p).encode())
    port = {"kind": "gsm", "ready": True, "reg": 1, "csq": 21, "calls": 0, "garbage": 0}
    state = {"online": True, "fw": "0.1.0", "store_id": "f3a9c2e17b04", "boot": 3, "table_version": 7,
             "table_sha256": "ab" * 32, "last_seq": 4411, "ports": {"gsm1": port, "fxo1": {
                 "kind": "fxo", "ready": False, "calls": 1, "garbage": 2}},
             "heap_free": 110000, "uptime_s": 86400, "clock": 1469048412, "profile": "esp32-2gsm",
             "heap_min_free": 90000, "calls": 12, "outbox": 3, "calls_in_progress": 1}
    records = [
        {"seq": 7, "t": "call", "start": 1469048412, "port": "gsm1", "caller": "+380501234567",
         "route": "police-102", "outcome": "answered", "target": "mariupol-102", "attempts": 1, "ring_s": 5,
         "talk_s": 60, "reason": "ok"},
        {"seq": 8, "t": "counters", "at": 1469050000, "routes": {"police-102": {"calls": 3}, "-": {"calls": 1}},
         "targets": {"mariupol-102": {"answered": 2}}, "dropped": 0},
        {"seq": 9, "t": "alarm", "at": 1469050001, "code": "modem_garbage", "detail": "3 bad lines", "port": "gsm1"},
        {"seq": 10, "t": "dropped", "at": 1469050002, "count": 2, "first_seq": 3, "last_seq": 6},
    ]
    out += [json.dumps(state).encode(), json.dumps({"store_id": "f3a9c2e17b04", "records": records}).encode(),
            json.dumps({"id": "c1", "op": "selftest", "args": {"deep": [1, {"x": None}]}}).encode(),
            json.dumps({"id": "c1", "ok": False, "error": "no_free_port"}).encode(),
            json.dumps({"version": 7, "sha256": "ab" * 32, "status": "applied", "reason": None}).encode()]
    return out


def _tables():
    doc = json.loads((VECTORS / "routing.json").read_text())
    return [json.dumps(t).encode() for t in doc["tables"].values()]


def seal(body, ascii_only=True):
    """An envelope around `body` bytes; bodies that are not UTF-8 go in as raw bytes."""
    sig = hmac.new(KEY, body, hashlib.sha256).hexdigest()
    try:
        text = json.dumps(body.decode(), ensure_ascii=ascii_only).encode()
    except UnicodeDecodeError:
        text = b'"' + body.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b'{"v":1,"alg":"HS256","sig":"' + sig.encode() + b'","body":' + text + b"}"


def mutate(rng, data):
    """One to three random edits of `data`."""
    for _ in range(rng.randint(1, 3)):
        n = len(data)
        op = rng.randrange(7)
        i = rng.randint(0, n)
        if op == 0 and n:  # a byte flip
            i = min(i, n - 1)
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif op == 1:  # truncation
            data = data[:i]
        elif op == 2:  # delete a range
            data = data[:i] + data[i + rng.randint(1, 8):]
        elif op == 3:  # repeat a range
            data = data[:i] + data[i:i + rng.randint(1, 12)] + data[i:]
        else:  # insert a snippet, often in place of a number or just after a delimiter
            snip = rng.choice(SNIPPETS)
            if op == 4:
                j = data.find(b":", i)
                i = j + 1 if j >= 0 else i
            data = data[:i] + snip + data[i:]
    return data


def _hypothesis_inputs(count):
    """JSON values (floats, odd text, deep lists) and raw bytes from hypothesis, derandomized."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    found = []
    scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=12) | st.floats()
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=20)
    keys = st.sampled_from(["online", "store_id", "records", "id", "op", "ok", "version", "status", "seq", "ports"])
    objects = st.dictionaries(keys, values, max_size=6)

    @settings(max_examples=count, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(st.one_of(objects.map(lambda v: json.dumps(v).encode()),
                     objects.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
                     st.binary(max_size=80)))
    def collect(data):
        found.append(data)

    collect()
    return found


def build(count=3000, seed=20261207):
    """About `count` inputs: (bytes, is valid UTF-8) pairs, always the same for one seed."""
    rng = random.Random(seed)
    msgs, tables = _messages(), _tables()
    envelopes = [seal(t) for t in tables] + [seal(t, ascii_only=False) for t in tables]
    seeds = msgs + tables + envelopes
    out = list(seeds)
    n_hyp = count // 6
    n_resealed = count // 6
    while len(out) < count - n_hyp - n_resealed:
        out.append(mutate(rng, rng.choice(msgs if rng.random() < 0.7 else seeds)))
    for _ in range(n_resealed):  # a mutated body behind a good signature: load() judges it
        out.append(seal(mutate(rng, rng.choice(tables)), ascii_only=rng.random() < 0.5))
    out += _hypothesis_inputs(n_hyp)
    return [(d, _utf8(d)) for d in out]


def _utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def write(path, corpus):
    with open(path, "w") as f:
        for data, text in corpus:
            f.write(("s" if text else "b") + " " + binascii.hexlify(data).decode() + "\n")


if __name__ == "__main__":
    write(sys.argv[1], build(int(sys.argv[2]) if len(sys.argv) > 2 else 3000))
