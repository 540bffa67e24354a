"""protocols.messages: its vectors on CPython, plus properties beyond them.

(tests/protocols/test_vectors.py runs every vector file, these included, on
the real MicroPython binary too.)
"""

import copy
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import messages
from protocols.errors import ContractError

VECTORS = str(Path(__file__).resolve().parents[1] / "vectors")
if VECTORS not in sys.path:
    sys.path.insert(0, VECTORS)
import runner  # noqa: E402  (lives in tests/vectors, shared with MicroPython)

CASES = [c for f, c in runner.cases() if f == "messages.json"]
PROPS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case):
    runner.run_case(case)


def test_enough_vectors_for_every_kind_and_rule():
    kinds = {c.get("kind") for c in CASES if c["op"] == "msg_valid"}
    assert set(messages.KINDS) <= kinds
    assert len([c for c in CASES if c["op"] == "msg_invalid"]) >= 60


# ---- strategies

ints = st.integers(-(2**63), 2**63 - 1)  # what JSON may hold (64 bits)
nats = st.integers(0, messages.SEQ_LIMIT - 1)  # seqs, versions and counts
times = st.integers(messages.TIME_MIN, messages.TIME_MAX - 1)
secs = st.integers(0, messages.MAX_CALL_S)
json_scalars = st.none() | st.booleans() | ints | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
json_with_floats = st.recursive(
    json_scalars | st.floats(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
ports = st.from_regex(r"[a-z][a-z0-9]{0,15}", fullmatch=True)
idents = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}", fullmatch=True)
ids64 = st.text(min_size=1, max_size=64)
texts = st.text(min_size=1, max_size=16)
shas = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
counts = st.dictionaries(idents, st.dictionaries(texts, nats, max_size=4), max_size=4)
port_entries = st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(["gsm", "fxo"]), "ready": st.booleans(), "reg": st.none() | st.integers(0, 255),
    "csq": st.none() | st.integers(0, 255), "calls": nats, "garbage": nats})


def _call(seq):
    return st.builds(messages.call_record, st.just(seq), times, ports, st.none() | st.text(max_size=32),
                     st.none() | idents, st.sampled_from(messages.OUTCOMES), st.none() | idents,
                     st.integers(0, messages.MAX_ATTEMPTS), secs, secs, st.sampled_from(messages.REASONS) | texts)


def _record(seq):
    return st.one_of(
        _call(seq),
        st.builds(messages.counters_record, st.just(seq), times, counts, counts, st.none() | nats),
        st.builds(messages.alarm_record, st.just(seq), times, texts, st.text(max_size=300), st.none() | ports),
        st.integers(1, 50).flatmap(lambda n: st.builds(  # the records dropped before this one
            messages.dropped_record, st.just(seq), times, st.integers(1, n), st.just(seq - n), st.just(seq - 1))),
        st.builds(lambda t, extra: dict(extra, seq=seq, t=t), texts.filter(lambda t: t not in messages.RECORD_KINDS),
                  st.dictionaries(st.text(max_size=8), json_values)),
    )


@st.composite
def _records(draw):
    gaps = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=12))
    seq, out = draw(st.integers(50, 2**40)), []
    for gap in gaps:
        seq += gap
        out.append(draw(_record(seq)))
    return out


messages_by_kind = {
    "state": st.builds(messages.state, st.booleans(), st.none() | st.text(max_size=80), st.none() | ids64,
                       st.none() | nats, st.none() | nats, st.none() | shas, st.none() | nats,
                       st.none() | st.dictionaries(ports, port_entries, max_size=messages.MAX_PORTS),
                       st.none() | nats, st.none() | nats, st.none() | times, st.none() | st.text(max_size=40),
                       st.none() | nats, st.none() | nats, st.none() | nats, st.none() | nats),
    "will": st.just(messages.will()),
    "table_ack": st.one_of(
        st.builds(messages.table_ack, st.integers(1, messages.SEQ_LIMIT - 1), shas, st.just("applied"),
                  st.none() | st.text(max_size=300)),
        st.builds(messages.table_ack, nats, st.none() | shas, st.just("rejected"), texts)),
    "events": st.builds(messages.events, ids64, _records()),
    "events_ack": st.builds(messages.events_ack, ids64, nats),
    "cmd": st.builds(messages.cmd, ids64, texts, st.none() | st.dictionaries(st.text(max_size=8), json_values)),
    "cmd_result": st.one_of(st.builds(messages.cmd_result, ids64, st.just(True), json_values),
                            st.builds(messages.cmd_result, ids64, st.just(False), st.none(), st.text(min_size=1,
                                                                                                    max_size=300))),
}
valid_messages = st.sampled_from(sorted(messages_by_kind)).flatmap(
    lambda kind: st.tuples(st.just(kind), messages_by_kind[kind]))


# ---- properties

@PROPS
@given(valid_messages)
def test_encode_decode_round_trip(kind_and_obj):
    kind, obj = kind_and_obj
    data = messages.encode(kind, obj)
    assert type(data) is bytes
    assert data == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()  # compact UTF-8
    assert messages.decode(kind, data) == obj
    assert messages.validate(kind, obj) is obj


@PROPS
@given(st.sampled_from(messages.KINDS), json_with_floats)
def test_decode_arbitrary_json_raises_only_message_error(kind, value):
    text = json.dumps(value)
    for payload in (text, text.encode()):
        try:
            assert type(messages.decode(kind, payload)) is dict
        except messages.MessageError as e:
            assert type(e.path) is str and e.reason


@PROPS
@given(st.sampled_from(messages.KINDS), json_with_floats)
def test_validate_arbitrary_values_raises_only_message_error(kind, value):
    try:
        assert messages.validate(kind, value) is value
    except messages.MessageError:
        pass


@PROPS
@given(st.sampled_from(messages.KINDS), st.binary(max_size=200))
def test_decode_arbitrary_bytes_raises_only_message_error(kind, data):
    try:
        messages.decode(kind, data)
    except messages.MessageError:
        pass


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@PROPS
@given(valid_messages, st.data())
def test_mutated_valid_messages_raise_only_message_error(kind_and_obj, data):
    """One field anywhere in a valid message swapped for any JSON value (floats too)."""
    kind, obj = kind_and_obj[0], copy.deepcopy(kind_and_obj[1])
    paths = [p for p in _paths(obj) if p]
    if paths:
        path = data.draw(st.sampled_from(paths))
        parent = obj
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = data.draw(json_with_floats)
    try:
        messages.decode(kind, json.dumps(obj))
    except messages.MessageError as e:
        assert e.reason


# ---- specific behaviour

def test_error_types():
    assert issubclass(messages.MessageError, ContractError)
    assert issubclass(messages.MessageError, ValueError)
    with pytest.raises(messages.MessageError) as err:
        messages.decode("state", b'{"online": "yes"}')
    assert (err.value.path, err.value.reason) == ("online", "must be true or false")
    assert str(err.value) == "online: must be true or false"


def test_validate_does_not_mutate_and_decode_fills_cmd_args():
    obj = {"id": "c1", "op": "reboot"}
    assert messages.validate("cmd", obj) == {"id": "c1", "op": "reboot"}
    assert messages.decode("cmd", json.dumps(obj))["args"] == {}


def test_lone_surrogates_are_refused_on_cpython():
    with pytest.raises(messages.MessageError) as err:
        messages.decode("state", '{"online": true, "fw": "\\ud800"}')
    assert err.value.path == "payload"
    with pytest.raises(messages.MessageError):
        messages.encode("state", {"online": True, "fw": "\ud800"})
    # an escaped surrogate pair is one character, and fine
    assert messages.decode("state", '{"online": true, "fw": "\\ud83d\\ude00"}')["fw"] == "\U0001f600"
    # as MQTT delivers them, in bytes: an escape in either case, or a surrogate's own three bytes
    for raw in (b'{"online": true, "fw": "\\uDC00"}', b'{"online": true, "fw": "x\xed\xa0\x80"}'):
        with pytest.raises(messages.MessageError, match="surrogate|UTF-8"):
            messages.decode("state", raw)
    assert messages.decode("state", b'{"online": true, "fw": "\\ud83d\\ude00 \\u00e9"}')["fw"] == "\U0001f600 \u00e9"


def test_deep_nesting_is_a_message_error():
    deep = "[" * 100000 + "]" * 100000
    with pytest.raises(messages.MessageError):
        messages.decode("cmd", '{"id": "c", "op": "x", "args": {"a": ' + deep + "}}")
    value = []
    for _ in range(100000):
        value = [value]
    with pytest.raises(messages.MessageError):
        messages.validate("cmd", {"id": "c", "op": "x", "args": {"a": value}})


@pytest.mark.parametrize("odd", [{1, 2}, (1, 2), (1.5,), {1: "int key"}, b"bytes", object()])
def test_non_json_values_cannot_be_encoded(odd):
    """MicroPython would write `{1: 2}` for an int key, and a tuple could hide a float."""
    with pytest.raises(messages.MessageError) as err:
        messages.encode("cmd", {"id": "c", "op": "x", "args": {"a": [odd]}})
    assert err.value.path == "payload"


def test_max_bytes():
    payload = json.dumps(messages.events_ack("s", 1)).encode()
    assert messages.decode("events_ack", payload, max_bytes=len(payload))
    with pytest.raises(messages.MessageError) as err:
        messages.decode("events_ack", payload, max_bytes=len(payload) - 1)
    assert err.value.path == "payload"


def test_unknown_kind():
    for kind in ("table", "", None, ["state"]):
        with pytest.raises(messages.MessageError) as err:
            messages.validate(kind, {"online": True})
        assert err.value.path == "kind"


def test_will_is_a_state_and_encodes_small():
    assert messages.encode("will", messages.will()) == b'{"online":false}'
    assert messages.decode("state", messages.encode("will", messages.will())) == {"online": False}


# ---- issue 8

def test_decode_of_state_returns_a_new_dict_with_only_the_contract_fields():
    raw = {"online": True, "fw": "0.1.0", "mode": "eco", "ports": {"gsm1": {"kind": "gsm", "csq": 21, "rssi": -70}}}
    got = messages.decode("state", json.dumps(raw))
    assert got == {"online": True, "fw": "0.1.0", "ports": {"gsm1": {"kind": "gsm", "csq": 21}}}


@pytest.mark.parametrize("payload", [b'{"store_id":"x","records":[1.5,}', b'{"a": 1.5, "b": tru}', b'[1e400,'])
def test_a_float_before_a_syntax_error_is_a_message_error(payload):
    """Finding 1: the second parse, which finds where a float is, raised JSONDecodeError out of decode."""
    for kind in messages.KINDS:
        with pytest.raises(messages.MessageError) as err:
            messages.decode(kind, payload)
        assert err.value.path == "payload"


def test_decode_turns_an_unexpected_exception_into_a_message_error(monkeypatch):
    def broken(kind, obj):
        raise IndexError("bug")

    monkeypatch.setattr(messages, "_check", broken)
    with pytest.raises(messages.MessageError) as err:
        messages.decode("state", b'{"online": true}')
    assert err.value.reason.startswith(messages.UNEXPECTED) and "IndexError" in err.value.reason


def test_fit_record_makes_any_firmware_record_pass_encode():
    rec = {"t": "alarm", "at": 3, "code": "x" * 100, "detail": "d" * 10**6, "port": "gsm1"}
    messages.fit_record(rec)
    assert messages.encode("events", messages.events("s1", [dict(rec, seq=1)]))
    call = messages.call_record(2, 2**40, "gsm1", "1" * 100, None, "failed", None, 0, 0, 0, "r" * 100)
    messages.fit_record(call)
    assert messages.decode("events", messages.encode("events", messages.events("s1", [call])))
