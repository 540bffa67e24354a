"""protocols.topics: its vectors on CPython, plus properties beyond them.

(tests/protocols/test_vectors.py runs every vector file, these included, on
the real MicroPython binary too.)
"""

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import topics
from protocols.errors import ContractError

VECTORS = str(Path(__file__).resolve().parents[1] / "vectors")
if VECTORS not in sys.path:
    sys.path.insert(0, VECTORS)
import runner  # noqa: E402  (lives in tests/vectors, shared with MicroPython)

CASES = [c for f, c in runner.cases() if f == "topics.json"]
PROPS = settings(deadline=None)

gateway_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=3, max_size=32)
kinds = st.sampled_from(topics.KINDS)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case):
    runner.run_case(case)


def _matches(filter_, topic):
    """MQTT 3.1.1 topic filter matching (`+` one level, `#` the rest)."""
    f, t = filter_.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


@PROPS
@given(gateway_ids, kinds)
def test_parse_inverts_topic(gw, kind):
    name = topics.topic(gw, kind)
    assert topics.parse(name) == (gw, kind)
    assert getattr(topics, kind)(gw) == name
    assert name == topics.ROOT + "/gw/" + gw + "/" + topics.SUFFIXES[topics.KINDS.index(kind)]


@PROPS
@given(st.text(max_size=80) | st.builds(lambda gw, s: "citygate/v1/gw/" + gw + s, st.text(max_size=34),
                                         st.sampled_from(["/" + s for s in topics.SUFFIXES]) | st.text(max_size=12)))
def test_parse_arbitrary_text_raises_only_topic_error(text):
    try:
        gw, kind = topics.parse(text)
    except topics.TopicError as e:
        assert e.path == "topic" and e.reason
    else:
        assert topics.topic(gw, kind) == text


@PROPS
@given(st.text(max_size=40), st.text(max_size=80), st.booleans())
def test_allowed_never_raises(gw, text, write):
    assert topics.allowed(gw, text, write) in (True, False)


@PROPS
@given(gateway_ids, gateway_ids, kinds, st.booleans())
def test_allowed_agrees_with_acl_lines(gw, owner, kind, write):
    name = topics.topic(owner, kind)
    line = ("topic write " if write else "topic read ") + name
    assert topics.allowed(gw, name, write) == (line in topics.acl_lines(gw))
    assert topics.allowed(gw, name, write) == (gw == owner and kind in (
        topics.GATEWAY_PUBLISHES if write else topics.GATEWAY_READS))


@PROPS
@given(gateway_ids, kinds, kinds)
def test_filters_match_exactly_their_kind(gw, kind, other):
    name = topics.topic(gw, other)
    assert _matches(topics.filter(kind), name) == (kind == other)
    assert _matches(topics.filter(kind, gw), name) == (kind == other)


def test_gateway_reads_and_publishes_split_the_kinds():
    assert sorted(topics.GATEWAY_PUBLISHES + topics.GATEWAY_READS) == sorted(topics.KINDS)
    assert set(topics.RETAINED) <= set(topics.KINDS)


def test_error_type():
    assert issubclass(topics.TopicError, ContractError)
    with pytest.raises(topics.TopicError) as err:
        topics.state("GW")
    assert (err.value.path, str(err.value)) == ("gw", "gw: must match [a-z0-9-]{3,32}")
