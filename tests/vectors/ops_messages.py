"""Vector ops for protocols.messages and protocols.topics (see runner.py).

Message vectors give `payload` either as a JSON object (checked with
`validate` and `encode`, and `decode`d from its JSON text) or as a string
holding JSON text (only `decode`d: the way to write floats, bad JSON, big
integers); `payload_hex` gives raw bytes.
"""

import binascii
import json

from runner import VectorFailure, expect

from protocols import messages, topics


def _raises(fn, args, error, case, what):
    """Call fn(*args); it must raise `error` with the case's path (and reason text)."""
    try:
        fn(*args)
    except error as e:
        expect(e.path == case["path"], what + ": path " + repr(e.path) + " (" + e.reason + "), want "
               + repr(case["path"]))
        want = case.get("reason_contains")
        expect(want is None or want in e.reason, what + ": reason " + repr(e.reason) + " lacks " + repr(want))
        return
    raise VectorFailure(what + ": no " + error.__name__ + ", want path " + repr(case["path"]))


def _texts(case):
    """The payload as JSON text / bytes to decode, and the object (or None)."""
    if "payload_hex" in case:
        return [binascii.unhexlify(case["payload_hex"])], None
    payload = case["payload"]
    if type(payload) is str:
        return [payload, payload.encode()], None
    text = json.dumps(payload)
    return [text, text.encode()], payload


def msg_valid(case):
    kind = case["kind"]
    texts, obj = _texts(case)
    if obj is not None:
        expect(messages.validate(kind, obj) is obj, "validate must return its argument")
    for text in texts:
        got = messages.decode(kind, text)
        want = case.get("decoded", obj)
        expect(want is None or got == want, "decoded " + repr(got) + ", want " + repr(want))


def msg_invalid(case):
    kind = case["kind"]
    texts, obj = _texts(case)
    if obj is not None:
        _raises(messages.validate, (kind, obj), messages.MessageError, case, "validate")
        _raises(messages.encode, (kind, obj), messages.MessageError, case, "encode")
    for text in texts:
        _raises(messages.decode, (kind, text), messages.MessageError, case, "decode")


def msg_roundtrip(case):
    kind = case["kind"]
    data = messages.encode(kind, case["payload"])
    expect(type(data) is bytes, "encode must give bytes")
    got = messages.decode(kind, data)
    want = case.get("decoded", case["payload"])
    expect(got == want, "round trip gave " + repr(got) + ", want " + repr(want))


def msg_build(case):
    fn = getattr(messages, case["ctor"])
    got = fn(*case.get("args", []), **case.get("kwargs", {}))
    expect(got == case["expect"], case["ctor"] + " gave " + repr(got) + ", want " + repr(case["expect"]))
    kind = case.get("kind")
    if kind is not None:
        expect(messages.decode(kind, messages.encode(kind, got)) == got, "built message does not round-trip")


def msg_batch(case):
    """`count` minimal records of an unknown kind: checks the batch size limit."""
    recs = [{"seq": i + 1, "t": "x"} for i in range(case["count"])]
    obj = {"store_id": "s1", "records": recs}
    if "path" in case:
        _raises(messages.validate, ("events", obj), messages.MessageError, case, "validate")
        _raises(messages.decode, ("events", json.dumps(obj)), messages.MessageError, case, "decode")
    else:
        expect(len(messages.decode("events", messages.encode("events", obj))["records"]) == case["count"],
               "records lost")


def msg_constants(case):
    for name in ("KINDS", "OUTCOMES", "REASONS", "RECORD_KINDS", "OUTBOUND_OUTCOMES", "PROBE_OUTCOMES"):
        if name not in case:
            continue
        expect(list(getattr(messages, name)) == case[name], name + " is " + repr(getattr(messages, name)))


def msg_fit(case):
    rec = dict(case["record"])
    got = messages.fit_record(rec)
    expect(got == case["expect"], "fit_record gave " + repr(got))


def msg_bounds(case):
    for name in case:
        if name.isupper():
            expect(getattr(messages, name) == case[name], name + " is " + repr(getattr(messages, name)))


def topic_build(case):
    gw, kind, want = case["gw"], case["kind"], case["topic"]
    expect(topics.topic(gw, kind) == want, "topic() gave " + repr(topics.topic(gw, kind)))
    expect(getattr(topics, kind)(gw) == want, kind + "() gave " + repr(getattr(topics, kind)(gw)))
    expect(topics.parse(want) == (gw, kind), "parse gave " + repr(topics.parse(want)))


def topic_build_invalid(case):
    gw, kind = case["gw"], case["kind"]
    _raises(topics.topic, (gw, kind), topics.TopicError, case, "topic")
    if kind in topics.KINDS:
        _raises(getattr(topics, kind), (gw,), topics.TopicError, case, kind)


def topic_parse(case):
    got = topics.parse(case["topic"])
    expect(got == (case["gw"], case["kind"]), "parse gave " + repr(got))


def topic_invalid(case):
    case = dict(case)
    case["path"] = "topic"
    _raises(topics.parse, (case["topic"],), topics.TopicError, case, "parse")
    for write in (True, False):
        expect(not topics.allowed("gw-x", case["topic"], write), "allowed() must refuse it")


def topic_filter(case):
    args = (case["kind"], case["gw"]) if "gw" in case else (case["kind"],)
    if "path" in case:
        _raises(topics.filter, args, topics.TopicError, case, "filter")
    else:
        got = topics.filter(*args)
        expect(got == case["filter"], "filter gave " + repr(got))


def topic_acl(case):
    got = topics.allowed(case["gw"], case["topic"], case["write"])
    expect(got is case["allowed"], "allowed gave " + repr(got))


def topic_acl_lines(case):
    if "path" in case:
        _raises(topics.acl_lines, (case["gw"],), topics.TopicError, case, "acl_lines")
    else:
        got = topics.acl_lines(case["gw"])
        expect(got == case["lines"], "acl_lines gave " + repr(got))


OPS = {
    "msg_valid": msg_valid,
    "msg_invalid": msg_invalid,
    "msg_roundtrip": msg_roundtrip,
    "msg_build": msg_build,
    "msg_batch": msg_batch,
    "msg_constants": msg_constants,
    "msg_fit": msg_fit,
    "msg_bounds": msg_bounds,
    "topic_build": topic_build,
    "topic_build_invalid": topic_build_invalid,
    "topic_parse": topic_parse,
    "topic_invalid": topic_invalid,
    "topic_filter": topic_filter,
    "topic_acl": topic_acl,
    "topic_acl_lines": topic_acl_lines,
}
