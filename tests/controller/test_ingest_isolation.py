"""Issue 8, controller ingest: no gateway's input stops ingest for the others (real Mosquitto, real
SQLite and PostgreSQL). A message that fails in any way is counted, alerted (`bad_message`, one
open alert per gateway, rate-limited, detail bounded) and dropped; a dead bridge thread is started
again; payloads and stored text are bounded."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from controller.ingest.records import write_batch
from controller.limits import DETAIL_MAX, MAX_PAYLOAD, TEXT_MAX
from controller.models import Alert, Gateway, Record
from protocols import messages, topics
from tests.conditions import until
from tests.controller import test_ingest
from tests.controller.test_ingest import GW, FakeGateway, call

database, running = test_ingest.database, test_ingest.running  # the same fixtures: SQLite and PostgreSQL

OTHER = "gw-kramatorsk-1"
# a float before a JSON syntax error: the decoder of the day parsed it again outside its error handling
BROKEN_JSON = b'{"store_id":"x","records":[1.5,}'


def alerts(db, code: str, gw: str = GW) -> list[Alert]:
    with db.session() as s:
        return s.scalars(select(Alert).where(Alert.code == code, Alert.gateway_id == gw).order_by(Alert.id)).all()


def test_a_message_the_decoder_fails_on_stops_no_other_gateway(running, monkeypatch):
    """Finding 1: an exception other than MessageError out of decode killed the decoder thread; no
    later record of any gateway was stored."""
    db, bridge, gw = running
    real_decode = messages.decode

    def decode(kind, payload, max_bytes=None):
        if b"poison" in bytes(payload):
            raise ValueError("decoder bug " + "x" * 5000)
        return real_decode(kind, payload, max_bytes)

    monkeypatch.setattr(messages, "decode", decode)
    other = FakeGateway(gw.c.port, OTHER)
    try:
        for payload, topic in ((BROKEN_JSON, topics.events(GW)), (BROKEN_JSON, topics.state(GW)),
                               (b'{"store_id":"poison","records":[]}', topics.events(GW))):
            gw.c.publish(topic, payload, qos=1).wait_for_publish(5)
        other.send("events", messages.events("good-store", [call(1), call(2)]))
        assert other.wait_ack(2) == {"store_id": "good-store", "seq": 2}
        gw.send("events", messages.events("later-store", [call(1)]))  # the offender's own good messages pass too
        assert gw.wait_ack(1) == {"store_id": "later-store", "seq": 1}
        assert bridge.wait_idle()
        assert bridge.refused["bad_messages"] >= 3 and bridge.refused["decode_errors"] >= 1
        assert bridge._decoder.is_alive() and bridge._collector.is_alive()
        found = until(lambda: alerts(db, "bad_message"), what="a bad_message alert")
        assert len(found) == 1, "one open alert per gateway, not one per message"
        assert len(found[0].detail) <= DETAIL_MAX
    finally:
        other.close()
    with db.session() as s:
        stored = s.execute(select(Record.gateway_id, Record.store_id, Record.seq).order_by(Record.id)).all()
    assert sorted(tuple(r) for r in stored) == sorted([(GW, "later-store", 1), (OTHER, "good-store", 1),
                                                       (OTHER, "good-store", 2)])


def test_bad_messages_are_rate_limited_into_one_alert_per_gateway_with_a_count(running):
    """Finding 2 (isolation): 40 invalid messages make one open alert whose detail counts them all,
    not 40 rows."""
    db, bridge, gw = running
    bridge._refusals.every_s = 1.0  # the production window is a minute; the counting is the same
    for i in range(40):
        gw.c.publish(topics.events(GW), b'{"store_id": "s", "records": [{"seq": %d, "t": 7}]}' % (i + 1), qos=1)
    until(lambda: bridge.refused["bad_messages"] >= 40, what="40 refusals")
    found = until(lambda: [a for a in alerts(db, "bad_message") if a.detail.endswith("[40 messages refused]")],
                     what="the held-back refusals folded into the open alert")
    assert len(alerts(db, "bad_message")) == 1
    assert "records[0].t" in found[0].detail and len(found[0].detail) <= DETAIL_MAX
    assert bridge.wait_idle()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_thread_of_the_bridge_that_dies_is_started_again(running):
    """No thread may stay dead: the supervisor restarts the collector (and decoder) and logs it."""
    db, bridge, gw = running
    sid = "restart-store"
    real_publish, real_decode = bridge._publish_written, bridge._decode
    deaths = {"collector": 0, "decoder": 0}

    def publish_once(written):
        if deaths["collector"] == 0 and written.acks:
            deaths["collector"] += 1
            raise SystemExit("the collector dies")  # not from input: the supervisor is the last line
        return real_publish(written)

    def decode_once(raw):
        if deaths["decoder"] == 0:
            deaths["decoder"] += 1
            raise SystemExit("the decoder dies")
        return real_decode(raw)

    bridge._publish_written = publish_once
    gw.send("events", messages.events(sid, [call(1)]))
    until(lambda: deaths["collector"] and bridge.thread_restarts >= 1, what="the collector's restart")
    bridge._decode = decode_once
    gw.send("events", messages.events(sid, [call(2)]))  # lost with the decoder; the gateway sends it again
    until(lambda: deaths["decoder"] and bridge.thread_restarts >= 2, what="the decoder's restart")
    gw.send("events", messages.events(sid, [call(2), call(3)]))
    assert gw.wait_ack(3) == {"store_id": sid, "seq": 3}
    assert bridge.wait_idle(), "a message lost with a dead thread must not count as waiting forever"


def test_an_oversized_payload_is_refused_before_decoding(running):
    """Finding 7: the bridge bounds the payload it takes (events 256 KiB, other kinds 16 KiB)."""
    db, bridge, gw = running
    # valid as the contract goes (unknown fields are ignored), only too large
    big = dict(messages.events("big-store", [call(i) for i in range(1, 501)]), pad="p" * 200_000)
    payload = json.dumps(big).encode()
    assert len(payload) > MAX_PAYLOAD["events"]
    gw.c.publish(topics.events(GW), payload, qos=1).wait_for_publish(5)
    state = json.dumps(dict(messages.state(online=True), pad="p" * 20_000)).encode()
    gw.c.publish(topics.state(GW), state, qos=1).wait_for_publish(5)
    gw.send("events", messages.events("small-store", [call(1)]))
    assert gw.wait_ack(1)["store_id"] == "small-store"
    assert bridge.wait_idle()
    assert bridge.refused["oversized"] == 2
    found = until(lambda: alerts(db, "bad_message"), what="the alert")
    assert "more than the 262144 allowed" in found[0].detail
    with db.session() as s:
        assert s.scalars(select(Record.store_id).distinct()).all() == ["small-store"]
        assert s.get(Gateway, GW).online is False, "the oversized state was not applied"


def test_stored_text_is_bounded_whatever_the_decoder_let_through(database):
    """Finding 7: a 1 MB caller, alarm detail, table reject reason or state string is cut before it
    is stored (the decoders bound them too; this is the database's own line)."""
    from controller import reference
    from controller.compiler import compile_gateway

    database.upgrade()
    with database.session() as s:
        reference.seed(s)
        compile_gateway(s, s.get(Gateway, GW))
    mb = "9" * 1_000_000
    records = [dict(call(1), caller="+" + mb, tries=[["t", "x" * 5000]]),
               {"seq": 2, "t": "alarm", "at": 1469500100, "code": "c" * 100, "detail": "d" * 1_000_000},
               {"seq": 3, "t": "k" * 100, "note": "n" * 1_000_000}]
    # as plain dicts: what reaches the writer if a decoder lets it through
    items = [(GW, "events", {"store_id": "s-1", "records": records}),
             (GW, "table_ack", {"version": 1, "sha256": None, "status": "rejected", "reason": "why " * 250_000}),
             (GW, "state", {"online": True, "fw": "f" * 1_000_000, "table_version": None})]
    with database.session() as s:
        write_batch(s, items, {"records": 0, "duplicates": 0})
    with database.session() as s:
        stored = s.scalars(select(Record).order_by(Record.seq)).all()
        for rec in stored:
            assert len(json.dumps(rec.data)) < 4 * TEXT_MAX
        assert len(stored[0].caller) == 32 and len(stored[0].data["caller"]) == TEXT_MAX
        assert stored[2].kind == "k" * 16
        for alert in s.scalars(select(Alert)).all():
            assert len(alert.detail) <= DETAIL_MAX and len(alert.code) <= 48
        g = s.get(Gateway, GW)
        assert len(g.last_reject) <= DETAIL_MAX and len(g.state["fw"]) == TEXT_MAX


def test_a_refusal_quoting_a_nul_or_a_megabyte_is_stored_bounded(database):
    """The alert's detail quotes the gateway's input: PostgreSQL's text refuses NUL, so it is shown
    escaped (else the alert itself would fail, and with it the batch's acks); and it is cut to 500."""
    from controller.ingest.alerts import write_alerts

    database.upgrade()
    with database.session() as s:
        write_alerts(s, [(GW, "bad_message", 'state: ports.\x00: must be a port name', 1),
                         (GW, "bad_message", "events: " + "y" * 1_000_000, 2)])
    found = alerts(database, "bad_message")
    assert len(found) == 1 and found[0].detail.endswith("[3 messages refused]")
    assert len(found[0].detail) <= DETAIL_MAX and "\x00" not in found[0].detail
    with database.session() as s:
        write_alerts(s, [(GW, "bad_message", "state: ports.\x00x: must be a port name", 1)])
    assert "ports.\\0x" in alerts(database, "bad_message")[0].detail
