"""Properties of protocols.routing beyond the fixed vectors."""

import hashlib
import hmac
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import routing
from protocols.sign import hmac_sha256

PORTS = ["gsm1", "gsm2", "fxo1", "gsm3"]
json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)

with open("tests/vectors/routing.json") as f:
    REFERENCE = json.load(f)["tables"]["ref"]


def _mutations():
    """A valid table with one field somewhere swapped for an arbitrary JSON value."""

    def paths(obj, prefix=()):
        yield prefix
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from paths(v, prefix + (k,))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                yield from paths(v, prefix + (i,))

    all_paths = [p for p in paths(REFERENCE) if p]

    @st.composite
    def mutate(draw):
        doc = json.loads(json.dumps(REFERENCE))
        path = draw(st.sampled_from(all_paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
        return doc

    return mutate()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, _mutations()))
def test_load_raises_only_table_error(doc):
    for body in (doc, json.dumps(doc)):
        try:
            table = routing.load(json.loads(json.dumps(doc)) if body is doc else body)
        except routing.TableError as e:
            assert e.path is not None and e.reason
        else:
            assert isinstance(table, routing.Table)


@given(st.binary(max_size=200))
def test_load_of_arbitrary_bytes(data):
    try:
        routing.load(data)
    except routing.TableError as e:
        assert e.reason


# ---------------------------------------------------------------- valid tables

idents = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)
numbers = st.one_of(st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True),
                    st.from_regex(r"[0-9]{2,15}", fullmatch=True))
hhmm = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: "%02d:%02d" % t)
windows = st.fixed_dictionaries({
    "days": st.lists(st.sampled_from("1234567"), min_size=1, max_size=7, unique=True).map("".join),
    "start": hhmm,
    "end": hhmm | st.just("24:00"),
})


@st.composite
def tables(draw):
    target_ids = draw(st.lists(idents, min_size=1, max_size=5, unique=True))
    targets = {
        tid: {"number": draw(numbers), "via": draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=2)),
              "ring_timeout_s": draw(st.integers(1, 60)),
              **({"max_calls": draw(st.integers(0, 3))} if draw(st.booleans()) else {})}
        for tid in target_ids
    }
    action = st.one_of(st.fixed_dictionaries({"action": st.sampled_from(["reject", "callback"])}),
                       st.fixed_dictionaries({"action": st.just("forward"), "target": st.sampled_from(target_ids)}))
    routes = []
    for i in range(draw(st.integers(0, 6))):
        start = draw(st.none() | st.integers(0, 2**31))
        until = draw(st.none() | st.integers(1, 2**31))
        if start is not None and until is not None and until <= start:
            until = start + 1
        route = {"id": "r%d" % i, "port": draw(st.sampled_from(PORTS + ["*"])),
                 "caller": draw(st.lists(st.from_regex(r"\+?[0-9]{1,5}", fullmatch=True), max_size=3)),
                 "from": start, "until": until,
                 "targets": draw(st.lists(st.sampled_from(target_ids), max_size=4)),
                 "strategy": draw(st.sampled_from(["sequential", "round_robin"])),
                 "fallback": draw(action), "after_hours": draw(action)}
        if draw(st.booleans()):
            route["hours"] = draw(st.lists(windows, max_size=3))
        routes.append(route)
    return {"schema": 1, "gateway": "gw-test", "version": draw(st.integers(1, 10**6)),
            "tz": draw(st.sampled_from(["UTC0", "<+09>-9", "EST5EDT,M3.2.0,M11.1.0",
                                        "EET-2EEST,M3.5.0/3,M10.5.0/4", "<-03>3"])),
            "deny": draw(st.lists(st.from_regex(r"\+[1-9][0-9]{0,4}", fullmatch=True), max_size=4)),
            "closed": draw(st.lists(st.dates().map(str), max_size=3)),
            "targets": targets, "routes": routes}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from(PORTS + ["gsm9"]), st.none() | st.from_regex(r"\+?[0-9]{0,12}", fullmatch=True),
       st.integers(0, 2**32), st.dictionaries(st.text(max_size=8), st.integers(0, 5), max_size=5),
       st.integers(0, 1000))
def test_decide_is_total_and_safe(doc, port, caller, now, busy, turn):
    table = routing.load(doc)
    busy = {**busy, **{tid: n for tid, n in busy.items()}}
    d = routing.decide(table, port, caller, now, busy=busy, turn=turn)
    assert d.action in routing.ACTIONS
    assert d.reason in routing.REASONS
    if d.action == "dial":
        assert d.reason == "ok" and d.targets
        for tid in d.targets:
            target = table.targets[tid]
            assert not any(target.number.startswith(p) for p in table.deny), "denied number dialled"
            cap = target.max_calls
            assert cap is None or busy.get(tid, 0) < cap, "target over its cap dialled"
    elif d.action == "forward":
        assert len(d.targets) == 1
        assert not any(table.targets[d.targets[0]].number.startswith(p) for p in table.deny)
    else:
        assert d.targets == []
    if d.route is None:
        assert (d.action, d.reason) == ("reject", "no_route")


# ---------------------------------------------------------------- signing


@given(st.binary(min_size=16, max_size=200), st.binary(max_size=300))
def test_hmac_matches_the_standard_library(key, msg):
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()


KEY = bytes(range(32))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.data())
def test_any_altered_byte_breaks_the_signature(doc, data):
    body = json.dumps(doc).encode()
    payload = routing.seal(body, KEY)
    assert routing.unseal(payload, KEY, "gw-test").version == doc["version"]
    i = data.draw(st.integers(0, len(body) - 1))
    flipped = bytearray(body)
    flipped[i] = data.draw(st.sampled_from(b"0123456789abcxyz{}[]\",: ".replace(bytes([body[i]]), b"")))
    env = json.loads(payload)
    env["body"] = flipped.decode()
    with pytest.raises(routing.TableError) as err:
        routing.unseal(json.dumps(env).encode(), KEY, "gw-test")
    assert err.value.path == "sig"


def test_unseal_checks_signature_before_anything_else():
    doc = json.loads(json.dumps(REFERENCE))
    payload = routing.seal(json.dumps(doc).encode(), KEY)
    with pytest.raises(routing.TableError) as err:
        routing.unseal(payload, bytes(32), "gw-other", current_version=100)
    assert err.value.path == "sig"


def test_table_sha256_is_of_the_signed_body():
    body = json.dumps(REFERENCE).encode()
    table = routing.unseal(routing.seal(body, KEY), KEY, "gw-toretsk-1")
    assert table.sha256 == hashlib.sha256(body).hexdigest()


def test_seal_rejects_a_short_key():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        routing.seal(b"{}", b"short")


@settings(max_examples=300)
@given(st.text(max_size=300), st.booleans(), st.binary(max_size=20))
def test_in_place_unescape_equals_json_decoding(text, ascii_only, prefix):
    from protocols import jsonscan

    quoted = json.dumps(text, ensure_ascii=ascii_only).encode()
    buf = bytearray(prefix + quoted + b"tail")
    n = jsonscan.unescape_to_front(buf, len(prefix), len(prefix) + len(quoted), "body")
    assert bytes(buf) == text.encode("utf-8", "surrogatepass") and n == len(buf)


def test_unseal_into_leaves_the_body_in_the_buffer_and_tags_errors():
    body = json.dumps(dict(REFERENCE, note="Маріуполь \"102\" \\ ok"), ensure_ascii=False).encode()
    buf = bytearray(routing.seal(body, KEY))
    table, sig = routing.unseal_into(buf, KEY, "gw-toretsk-1")
    assert bytes(buf) == body and table.sha256 == hashlib.sha256(body).hexdigest()
    assert routing.verify_body(bytes(buf), sig, KEY, "gw-toretsk-1").version == table.version
    with pytest.raises(routing.TableError) as err:
        routing.unseal_into(bytearray(routing.seal(body, KEY)), KEY, "gw-toretsk-1", current_version=7)
    assert (err.value.path, err.value.version, err.value.sha256) == ("version", 7, hashlib.sha256(body).hexdigest())


# ---- issue 8: nothing but a TableError leaves load, unseal and seal

def test_seal_refuses_a_body_that_is_not_utf8_with_a_table_error():
    key = "11" * 32
    for body in (b'{"a": "\xff"}', b'{"a": "\xed\xa0\x80"}', "{\"a\": \"\ud800\"}"):
        with pytest.raises(routing.TableError) as err:
            routing.seal(body, key)
        assert err.value.path == "body"
    assert routing.unseal(routing.seal(json.dumps(_small_table()).encode(), key), key, "gw-a").version == 1


def _small_table():
    return {"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "targets": {}, "routes": []}


def test_load_and_unseal_of_text_with_lone_surrogates_raise_table_errors():
    body = json.dumps(_small_table())[:-1] + ', "x": "\ud800"}'
    with pytest.raises(routing.TableError) as err:
        routing.load(body)
    assert err.value.path == "body"
    with pytest.raises(routing.TableError) as err:
        routing.unseal('{"v": 1, "alg": "HS256", "sig": "' + "0" * 64 + '", "body": "\ud800"}', "11" * 32, "gw-a")
    assert err.value.path == "envelope"


@pytest.mark.parametrize("escape", ["\\u1_23", "\\u 123", "\\u+123", "\\u12"])
def test_unseal_refuses_a_malformed_unicode_escape_in_the_body(escape):
    """int(x, 16) takes underscores, spaces and signs: the escape is checked digit by digit first."""
    payload = '{"v": 1, "alg": "HS256", "sig": "' + "0" * 64 + '", "body": "' + escape + '"}'
    with pytest.raises(routing.TableError) as err:
        routing.unseal(payload, "11" * 32, "gw-a")
    assert err.value.path == "body"


def test_unseal_turns_an_unexpected_exception_into_a_table_error(monkeypatch):
    """The safety net: a bug in a decoder still gives the contract's error (and says it is one)."""
    def broken(*args):
        raise KeyError("bug")

    monkeypatch.setattr(routing, "_envelope", broken)
    with pytest.raises(routing.TableError) as err:
        routing.unseal(b"{}", "11" * 32, "gw-a")
    assert err.value.reason.startswith(routing.UNEXPECTED) and "KeyError" in err.value.reason
