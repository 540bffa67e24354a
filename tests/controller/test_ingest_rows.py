"""The one row type ingest passes records in (controller.ingest.rows.RecordRow): named fields in the
records table's column order, made by prepare_events for every kind, and the same rows again after the
hand-over from the bridge to the writer's process (as exact tuples: marshal takes nothing else)."""

from __future__ import annotations

import marshal

from controller.ingest import worker
from controller.ingest.records import prepare_events, wire_events
from controller.ingest.rows import COLUMNS, RecordRow
from controller.models import Record
from protocols import messages


def message() -> dict:
    return messages.events("st-rows", [
        messages.call_record(1, 1780000000, "gsm1", "+380671234567", "police-102", "answered", "mariupol-102",
                             1, 4, 30, "ok"),
        {**messages.call_record(2, 1780000100, "gsm3", None, "info-505", "callback", None, 1, 9, 0, "all_busy"),
         "option": "2", "tries": 3},
        messages.outbound_record(3, "cb-1", 1780000200, "gsm2", "+380629000505", "+380671000005", "answered", 4, 60),
        {"seq": 4, "t": "alarm", "at": 1780000300, "code": "sim_missing", "detail": "gsm4"},
    ])


def test_every_record_kind_becomes_a_named_row_in_the_records_columns():
    sid, rows = prepare_events("gw-rows-1", message(), 1780000400)
    assert sid == "st-rows" and all(type(r) is RecordRow for r in rows)
    assert set(COLUMNS) <= {c.name for c in Record.__table__.columns}  # each field a column of `records`
    call, menu, outbound, alarm = rows
    assert (call.gateway_id, call.seq, call.kind, call.at, call.route, call.outcome, call.target, call.ring_s,
            call.talk_s, call.data, call.received_at) == ("gw-rows-1", 1, "call", 1780000000, "police-102",
                                                          "answered", "mariupol-102", 4, 30, "{}", 1780000400)
    assert (menu.option, menu.caller, menu.target) == ("2", None, None) and '"tries": 3' in menu.data
    assert (outbound.kind, outbound.caller, outbound.outcome, outbound.talk_s) == (
        "outbound", "+380671000005", "answered", 60)
    assert (alarm.kind, alarm.at, alarm.route) == ("alarm", 1780000300, None)


def test_rows_cross_to_the_writers_process_and_come_back_named():
    """The bridge's rows (wire_events) go through marshal and arrive as prepare_events makes them."""
    item = ("gw-rows-1", "events", wire_events("gw-rows-1", message(), 1780000400))
    assert all(type(r) is tuple for r in item[2][1])
    back = worker._named(marshal.loads(marshal.dumps(item)))
    assert back == ("gw-rows-1", "events", prepare_events("gw-rows-1", message(), 1780000400))
    assert all(type(r) is RecordRow for r in back[2][1])
    state = ("gw-rows-1", "state", {"online": True})
    assert worker._named(marshal.loads(marshal.dumps(state))) == state
