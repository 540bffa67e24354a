"""Vector ops for protocols.routing and protocols.sign (see runner.py)."""

import binascii
import json

from runner import VectorFailure, expect

from protocols import routing
from protocols.sign import hmac_sha256


def _body(case):
    """The case's table as a dict, text or bytes: inline, or named in the file's `tables`."""
    if "text" in case:
        return case["text"]
    if "text_hex" in case:
        return binascii.unhexlify(case["text_hex"])
    if "body" in case:
        return case["body"]
    return case["_doc"]["tables"][case["table"]]


def _fresh(case):
    """A copy of the case's table (load() normalises the dict it is given)."""
    body = _body(case)
    return json.loads(json.dumps(body)) if type(body) is dict else body


def decide(case):
    table = routing.load(_fresh(case))
    d = routing.decide(table, case["port"], case["caller"], case["now"],
                       busy=case.get("busy"), turn=case.get("turn", 0), keys=case.get("keys"))
    expect(d.as_dict() == case["expect"], "got " + json.dumps(d.as_dict()))


def load_ok(case):
    table = routing.load(_fresh(case))
    expect(len(table.routes) == case["routes"], "routes: " + str(len(table.routes)))
    expect(len(table.targets) == case["targets"], "targets: " + str(len(table.targets)))
    as_text = routing.load(json.dumps(_body(case)))
    expect(as_text.sha256 is not None and len(as_text.sha256) == 64, "text load has no sha256")


def _raises(fn, case):
    try:
        fn()
    except routing.TableError as e:
        expect(e.path == case["path"], "path " + repr(e.path) + " (" + e.reason + "), wanted " + case["path"])
        want = case.get("reason_contains")
        expect(not want or want in e.reason, "reason " + repr(e.reason) + " lacks " + repr(want))
        expect(len(e.reason) > 3, "empty reason")
        return
    raise VectorFailure("accepted, wanted TableError at " + case["path"])


def load_error(case):
    body = _fresh(case)
    _raises(lambda: routing.load(body), case)


def seal_error(case):
    if "body_repeat" in case:
        text, times = case["body_repeat"]
        body = ("{\"x\": \"" + text * times + "\"}").encode()
    else:
        body = binascii.unhexlify(case["body_hex"])
    _raises(lambda: routing.seal(body, case["key"]), case)


def hmac(case):
    key = binascii.unhexlify(case["key_hex"])
    msg = binascii.unhexlify(case["msg_hex"])
    got = hmac_sha256(key, msg)
    expect(got == case["mac"], "got " + got)


def _sealed(case):
    if "payload" in case:
        return case["payload"]
    doc = json.loads(json.dumps(_body(case)))
    if "mutate_key" in case:
        doc[case["mutate_key"][0]] = case["mutate_key"][1]
    payload = routing.seal(json.dumps(doc).encode(), case["key"])
    if "tamper" in case:
        old, new = case["tamper"]
        payload = payload.replace(old.encode(), new.encode())
    return payload


def unseal_ok(case):
    payload = _sealed(case)
    env = json.loads(payload)
    expect(sorted(env.keys()) == ["alg", "body", "sig", "v"], "envelope keys " + str(sorted(env.keys())))
    table = routing.unseal(payload, case["key"], case["gateway"], case.get("current", 0))
    expect(table.version == _body(case)["version"], "version " + str(table.version))
    expect(table.gateway == case["gateway"], "gateway " + table.gateway)


def unseal_error(case):
    payload = _sealed(case)
    key = case.get("open_key", case["key"])
    _raises(lambda: routing.unseal(payload, key, case["gateway"], case.get("current", 0)), case)


def probes(case):
    """A table's `probes` (DESIGN §5a) as [target, every_s, has hours], and probes.in_hours at instants."""
    from protocols import probes as probe_rules

    table = routing.load(_fresh(case))
    got = [[p.target, p.every_s, p.hours is not None] for p in table.probes]
    expect(got == case["probes"], "probes " + json.dumps(got))
    for i, now, want in case.get("in_hours", []):
        ok = probe_rules.in_hours(table, table.probes[i], now)
        expect(ok is want, "probes[%d] at %d: in_hours %r" % (i, now, ok))


OPS = {
    "route_probes": probes,
    "route_decide": decide,
    "route_load_ok": load_ok,
    "route_load_error": load_error,
    "route_unseal_ok": unseal_ok,
    "route_unseal_error": unseal_error,
    "route_seal_error": seal_error,
    "hmac": hmac,
}
