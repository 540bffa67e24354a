"""MQTT topic names and the gateway's broker ACL (DESIGN §3).

Every topic is `citygate/v1/gw/{gw}/{suffix}`; `{gw}` is the gateway id
(`[a-z0-9-]{3,32}`), which is also its MQTT client id and username. A kind
names a topic in code (`table_ack`), its suffix names it on the wire
(`table/ack`). All topics use QoS 1; `RETAINED` lists the retained ones.
"""

from protocols import checks
from protocols.errors import ContractError

ROOT = "citygate/v1"
KINDS = ("table", "table_ack", "state", "events", "events_ack", "cmd", "cmd_result")
SUFFIXES = ("table", "table/ack", "state", "events", "events/ack", "cmd", "cmd/result")
GATEWAY_PUBLISHES = ("state", "table_ack", "events", "cmd_result")
GATEWAY_READS = ("table", "events_ack", "cmd")
RETAINED = ("table", "state", "events_ack")
QOS = 1

_PREFIX = ROOT + "/gw/"
_SUFFIX = {}
_KIND = {}
for _i in range(len(KINDS)):
    _SUFFIX[KINDS[_i]] = SUFFIXES[_i]
    _KIND[SUFFIXES[_i]] = KINDS[_i]
del _i


class TopicError(ContractError):
    """A topic, gateway id or topic kind outside the contract."""


def _gw(gw):
    if not checks.is_gateway_id(gw):
        raise TopicError("gw", "must match [a-z0-9-]{3,32}")
    return gw


def _suffix(kind):
    suffix = _SUFFIX.get(kind) if type(kind) is str else None
    if suffix is None:
        raise TopicError("kind", "must be one of " + ", ".join(KINDS))
    return suffix


def topic(gw, kind):
    """`topic("gw-x", "table_ack")` -> `"citygate/v1/gw/gw-x/table/ack"`."""
    suffix = _suffix(kind)
    return _PREFIX + _gw(gw) + "/" + suffix


def table(gw):
    return _PREFIX + _gw(gw) + "/table"


def table_ack(gw):
    return _PREFIX + _gw(gw) + "/table/ack"


def state(gw):
    return _PREFIX + _gw(gw) + "/state"


def events(gw):
    return _PREFIX + _gw(gw) + "/events"


def events_ack(gw):
    return _PREFIX + _gw(gw) + "/events/ack"


def cmd(gw):
    return _PREFIX + _gw(gw) + "/cmd"


def cmd_result(gw):
    return _PREFIX + _gw(gw) + "/cmd/result"


def parse(topic):
    """A concrete topic name -> (gw, kind); TopicError(path "topic") otherwise.

    Wildcard filters (`+`, `#`) are not topic names and are refused.
    """
    if type(topic) is not str:
        raise TopicError("topic", "must be a string")
    if not topic.startswith(_PREFIX):
        raise TopicError("topic", "must start with " + _PREFIX)
    rest = topic[len(_PREFIX):]
    cut = rest.find("/")
    if cut < 0:
        raise TopicError("topic", "must have a kind after the gateway id")
    gw = rest[:cut]
    if not checks.is_gateway_id(gw):
        raise TopicError("topic", "must name a gateway id matching [a-z0-9-]{3,32}")
    kind = _KIND.get(rest[cut + 1:])
    if kind is None:
        raise TopicError("topic", "must end with one of " + ", ".join(SUFFIXES))
    return (gw, kind)


def filter(kind, gw="+"):  # shadows the builtin inside this module only
    """Subscription filter for one kind: every gateway (`+`) or one of them."""
    suffix = _suffix(kind)
    if gw != "+":
        _gw(gw)
    return _PREFIX + gw + "/" + suffix


def allowed(gw, topic, write):
    """The broker ACL of §3 for gateway user `gw`: may it write (publish) or
    read (subscribe to / receive) `topic`? Only exact topic names are granted;
    a wildcard filter, a malformed topic or another gateway's topic is not.
    """
    if not checks.is_gateway_id(gw):
        return False
    try:
        owner, kind = parse(topic)
    except TopicError:
        return False
    if owner != gw:
        return False
    return kind in (GATEWAY_PUBLISHES if write else GATEWAY_READS)


def acl_lines(gw):
    """Mosquitto `acl_file` lines granting gateway user `gw` exactly §3."""
    _gw(gw)
    lines = ["user " + gw]
    for kind in GATEWAY_PUBLISHES:
        lines.append("topic write " + _PREFIX + gw + "/" + _SUFFIX[kind])
    for kind in GATEWAY_READS:
        lines.append("topic read " + _PREFIX + gw + "/" + _SUFFIX[kind])
    return lines
