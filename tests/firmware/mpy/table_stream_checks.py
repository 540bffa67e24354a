# Runs on MicroPython and CPython (tests/firmware/test_table_stream.py): gw.jstream fed in pieces of every
# size agrees with the JSON parser, and gw.bodyfile loads a table from a file exactly as routing.load does.
#   python|micropython table_stream_checks.py BODY_FILE WORK_FILE
import json
import sys

from gw import bodyfile
from gw.jstream import Members
from protocols import routing
from protocols.errors import ContractError
from protocols.sign import hmac_sha256


class Sink:
    def __init__(self):
        self.b = bytearray()

    def put(self, b, s, e):
        self.b.extend(b[s:e])


def scan(doc, step):
    sink, spans = Sink(), []
    m = Members("env", capture=("v", "sig"), stream="body", sink=sink, on_member=lambda k, s, e: spans.append(k))
    for i in range(0, len(doc), step):
        piece = bytearray(doc[i:i + step])
        m.feed(piece, len(piece))
    m.finish()
    return m, sink, spans


def jstream_checks():
    body = '{"a": "x\\"y\u00e9\U0001F600\\n", "deny": ["+7", "+8"], "n": null}'
    env = json.dumps({"v": 1, "x": {"q": [1, "]}\\\""]}, "sig": "ab", "body": body, "z": -12}).encode()
    for step in (1, 2, 3, 5, 7, 64, 1000):
        m, sink, spans = scan(env, step)
        assert bytes(sink.b) == body.encode(), (step, sink.b)
        assert m.got == {"v": b"1", "sig": b'"ab"'}, m.got
        assert sorted(spans) == ["body", "sig", "v", "x", "z"] and m.streamed, spans
    bad = [b"", b"[1]", b'{"a":1', b'{"a" 1}', b'{"a":1,}', b'{"a":1}x', b'{"body":"\\ud800"}', b'{"body":"\\uzz00"}',
           b'{"body":"\\q"}', b'{"\xff":1}', b"{,}", b'{"body":"\\ud800\\u0041"}']
    for doc in bad:
        for step in (1, 3, 100):
            try:
                scan(doc, step)
            except ContractError:
                continue
            raise AssertionError("accepted %r in pieces of %d" % (doc, step))


def count_checks():
    """`items` counts a member's elements (an object's members), whatever the pieces' size."""
    doc = b'{"a": [1, "x,]", {"b": [2, 3]}, [4, 5], null], "o": {"k": 1, "l": [1, 2]}, "e": [ ], "s": "q,r", "n": 7}'
    for step in (1, 2, 5, 1000):
        counts = {}
        m = Members("doc", on_member=lambda k, s, e: counts.__setitem__(k, m.items))
        for i in range(0, len(doc), step):
            piece = bytearray(doc[i:i + step])
            m.feed(piece, len(piece))
        m.finish()
        assert counts == {"a": 5, "o": 2, "e": 0, "s": 0, "n": 0}, (step, counts)


def route_id_checks(work):
    """Duplicate route ids are found however far apart (the file and the in-memory loader agree), and
    hundreds of distinct ids are never taken for duplicates."""
    doc = {"schema": 1, "gateway": "gw-ids-1", "version": 1, "tz": "UTC0",
           "targets": {"t": {"number": "+380629000001", "via": ["gsm1"]}},
           "routes": [{"id": "r%d" % i, "port": "*", "targets": ["t"]} for i in range(600)]}
    for dup in (None, 0, 417):
        if dup is not None:
            doc["routes"][599]["id"] = "r%d" % dup
        body = json.dumps(doc).encode()
        with open(work, "wb") as f:
            f.write(b" " * 191 + b"\n")
            f.write(body)
        found = []
        for load in (lambda: routing.load(body), lambda: bodyfile.load(work, 192, len(body), "gw-ids-1", 0)):
            try:
                found.append(len(load().routes))
            except routing.TableError as e:
                found.append((e.path, e.reason))
        want = 600 if dup is None else ("routes[599].id", "duplicates the id of routes[%d]" % dup)
        assert found == [want, want], (dup, found)


def bodyfile_checks(body_path, work):
    with open(body_path, "rb") as f:
        body = f.read()
    key = b"k" * 32
    with open(work, "wb") as f:
        f.write(b" " * 191 + b"\n")
        f.write(body)
    ref = routing.load(body)
    t = bodyfile.load(work, 192, len(body), ref.gateway, 0, key=key, sig=hmac_sha256(key, body))
    assert (t.sha256, t.version, t.routes, t.targets, t.deny, t.closed) == (
        ref.sha256, ref.version, ref.routes, ref.targets, ref.deny, ref.closed)
    for path, args in (("version", (ref.gateway, ref.version)), ("gateway", ("gw-other-1", 0))):
        try:
            bodyfile.load(work, 192, len(body), args[0], args[1], key=key, sig=hmac_sha256(key, body))
            raise AssertionError("no error at " + path)
        except routing.TableError as e:
            assert e.path == path and e.sha256 == ref.sha256, (e.path, e.reason)
    try:
        bodyfile.load(work, 192, len(body), ref.gateway, 0, key=b"x" * 32, sig=hmac_sha256(key, body))
        raise AssertionError("wrong key accepted")
    except routing.TableError as e:
        assert e.path == "sig", e.path


jstream_checks()
count_checks()
route_id_checks(sys.argv[2])
bodyfile_checks(sys.argv[1], sys.argv[2])
print("OK")
