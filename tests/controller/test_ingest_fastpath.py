"""The bridge's column-wise path for events messages of call records (controller.ingest.fastpath) takes
only what messages.decode accepts, and gives exactly the rows wire_events makes from it.

Each payload below is a valid message with one thing changed (a field's type, bound, null, a key
missing or extra, the order of seqs, the JSON text itself), then seeded random mixes of them: the
column-wise checks must refuse (None: the full path decides) whatever the contract refuses.
"""

from __future__ import annotations

import json
import random

import pytest

from controller.ingest.fastpath import call_rows
from controller.ingest.records import wire_events
from protocols import messages

GW, RECEIVED = "gw-fast-1", 1_780_000_999


def base(n: int = 5) -> dict:
    return messages.events("store-1", [
        messages.call_record(s, 1_780_000_000 + s, "gsm1", "+380671234567", "police-102", "answered",
                             "mariupol-102", 1, 2, 30, "ok") for s in range(1, n + 1)])


def full_path(payload: bytes):
    try:
        return wire_events(GW, messages.decode("events", payload), RECEIVED)
    except messages.MessageError:
        return None


def typed(result):
    """Rows with the type of each value: True == 1 and a tuple compare would not tell them apart."""
    if result is None:
        return None
    sid, rows = result
    return sid, [tuple((type(v), v) for v in row) for row in rows]


def same_or_refused(payload: bytes) -> bool:
    """True when the fast path took the payload (and agreed with the full path); asserts it never
    takes what the full path refuses, nor gives other rows."""
    got = call_rows(GW, payload, RECEIVED)
    if got is not None:
        assert typed(got) == typed(full_path(payload)), payload[:300]
    return got is not None


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


VALUES = [None, True, False, 0, -1, 1, 59, 1_780_000_000, 2**53 - 1, 2**53, 2**63, 1.5, "", "x", "x" * 33, "x" * 49,
          "gsm1", "Gsm1", "gsm-1", "police-102", "-", "answered", "callback", "ok", "+380671234567", "a\tb\\c\nd",
          "\u00e9\u4e2d", [], {}, [1], {"a": 1}, 946_684_799, 946_684_800, 4_102_444_799, 4_102_444_800]
KEYS = ("seq", "t", "start", "port", "caller", "route", "outcome", "target", "attempts", "ring_s", "talk_s", "reason")


def one_change_payloads() -> list[bytes]:
    out = []
    for key in KEYS:
        for value in VALUES:
            msg = base()
            msg["records"][2][key] = value
            out.append(dumps(msg))
        msg = base()
        del msg["records"][1][key]
        out.append(dumps(msg))
    for extra in ({"tries": 2}, {"option": "1"}, {"x": [[[[1]]]]}, {"deep": json.loads("[" * 40 + "]" * 40)}):
        msg = base()
        msg["records"][0].update(extra)
        out.append(dumps(msg))
    for top in ({"extra": 1}, {"store_id": ""}, {"store_id": "s" * 65}, {"store_id": 7}, {"records": []},
                {"records": {}}, {"records": [1, 2]}, {"records": base(501)["records"]},
                {"records": base(500)["records"]}):
        msg = base()
        msg.update(top)
        out.append(dumps(msg))
    for seqs in ((1, 2, 2, 3, 4), (1, 3, 2, 4, 5), (0, 1, 2, 3, 4), (5, 6, 7, 8, 2**53)):
        msg = base()
        for rec, seq in zip(msg["records"], seqs, strict=True):
            rec["seq"] = seq
        out.append(dumps(msg))
    good = dumps(base()).decode()
    out += [good.replace('"caller":"+380671234567"', '"caller":"\\ud800"', 1).encode(),
            good.replace('"attempts":1', '"attempts":1.0', 1).encode(),
            good.replace('"attempts":1', '"attempts":1e0', 1).encode(),
            good.replace('"ring_s":2', '"ring_s":NaN', 1).encode(),
            good.replace('"talk_s":30', '"talk_s":123456789012345678901', 1).encode(),
            good.replace('"reason":"ok"', '"reason":"ok","reason":"ok"', 1).encode(),
            good[:-1].encode(), b"\xff" + good.encode(), good.encode() + b" x", b"[]", b"null", b""]
    return out


def test_the_common_message_takes_the_fast_path_with_the_same_rows():
    assert same_or_refused(dumps(base()))
    assert same_or_refused(dumps(base(500)))
    for key, value in (("caller", None), ("route", None), ("target", None), ("caller", ""),
                       ("reason", "x" * 32), ("caller", "a\tb\\c\nd")):
        msg = base()
        msg["records"][1][key] = value
        assert same_or_refused(dumps(msg)), (key, value)


@pytest.mark.parametrize("payload", one_change_payloads())
def test_one_change_is_refused_or_decoded_alike(payload):
    same_or_refused(payload)


def test_random_mixes_are_refused_or_decoded_alike():
    rng = random.Random(12)
    taken = 0
    for _ in range(3000):
        msg = base(rng.randint(1, 8))
        for _ in range(rng.randint(1, 3)):
            rec = rng.choice(msg["records"])
            key = rng.choice(KEYS + ("tries",))
            if rng.random() < 0.1:
                rec.pop(key, None)
            else:
                rec[key] = rng.choice(VALUES)
        taken += same_or_refused(dumps(msg))
    assert taken > 0  # some mixes stay valid (a null caller, a short reason): the fast path took them
