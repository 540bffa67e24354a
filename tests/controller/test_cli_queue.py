"""`citygate callback` and `citygate alert` on a seeded SQLite database: what the /callbacks and /alerts
pages do, from the command line."""

import json

from sqlalchemy import select

from controller.ingest.records import write_batch
from controller.models import Alert, CallbackNote, Record
from controller.services import alerts
from protocols import messages
from tests.controller.test_cli_admin import DAY, db, run  # noqa: F401  (the seeded database fixture)


def _callbacks(db):  # noqa: F811
    with db.session() as s:
        write_batch(s, [("gw-mariupol-1", "events", messages.events("s1", [
            messages.call_record(1, DAY + 60, "gsm1", "+380671110001", "police-102", "callback", None, 2, 40, 0,
                                 "all_busy"),
            messages.call_record(2, DAY + 120, "gsm1", "+380671110002", "police-102", "answered", "mariupol-102", 1,
                                 5, 30, "ok")])),
                        ("gw-toretsk-1", "events", messages.events("s1", [
                            messages.call_record(1, DAY + 30, "gsm1", "+380671110003", "police-102", "callback",
                                                 None, 1, 40, 0, "no_answer")]))], {"records": 0, "duplicates": 0})
        return {r.caller: r.id for r in s.scalars(select(Record).where(Record.outcome == "callback"))}


def test_callback_list_note_done(db):  # noqa: F811
    ids = _callbacks(db)
    result = run("callback", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["caller"], r["city"]) for r in rows] == [("+380671110003", "Toretsk"), ("+380671110001", "Mariupol")]

    first = ids["+380671110003"]
    result = run("callback", "note", str(first), "no answer at 14:10")
    assert result.exit_code == 0, result.output
    result = run("callback", "list", "--city", "Toretsk", "--csv")
    assert result.exit_code == 0 and "no answer at 14:10" in result.output and "+380671110001" not in result.output

    result = run("callback", "done", str(first))
    assert result.exit_code == 0 and "done" in result.output, result.output
    with db.session() as s:
        assert s.get(Record, first).callback_done_at is not None
        assert [n.text for n in s.scalars(select(CallbackNote))] == ["no answer at 14:10"]
    assert [r["caller"] for r in json.loads(run("callback", "list", "--json").output)] == ["+380671110001"]


def test_callback_mistakes_name_the_field(db):  # noqa: F811
    ids = _callbacks(db)
    answered = 999_999
    result = run("callback", "done", str(answered))
    assert result.exit_code == 2 and "call_id" in result.output and "no call-back" in result.output
    result = run("callback", "note", str(ids["+380671110001"]), " ")
    assert result.exit_code == 2 and "note.text" in result.output
    result = run("callback", "list", "--city", "x" * 200)
    assert result.exit_code == 2 and "city" in result.output
    result = run("callback", "call", str(ids["+380671110001"]), "--agent", "+380629000505")
    assert result.exit_code == 2 and "--token" in result.output
    result = run("callback", "call", str(ids["+380671110001"]), "--agent", "+380629000505", "--token", "t",
                 "--api", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert result.exit_code == 2 and "--api" in result.output and "cannot reach" in result.output


def test_alert_list_ack_resolve(db):  # noqa: F811
    with db.session() as s:
        one = alerts.open_alert(s, "gw-mariupol-1", "gateway_offline", "no state for 12 min").id
        two = alerts.open_alert(s, "gw-toretsk-1", "signal_low", "gsm1: csq 3").id
    rows = json.loads(run("alert", "list", "--json").output)
    assert {r["id"] for r in rows} == {one, two} and all(r["resolved"] is None for r in rows)

    result = run("alert", "ack", str(one))
    assert result.exit_code == 0 and "acknowledged" in result.output, result.output
    result = run("alert", "resolve", str(two))
    assert result.exit_code == 0 and "resolved" in result.output, result.output
    with db.session() as s:
        a, b = s.get(Alert, one), s.get(Alert, two)
        assert a.acknowledged_by.startswith("cli:") and a.resolved_at is None
        assert b.resolved_at is not None
    assert [r["id"] for r in json.loads(run("alert", "list", "--json").output)] == [one]
    assert [r["id"] for r in json.loads(run("alert", "list", "--state", "past", "--json").output)] == [two]
    result = run("alert", "list", "--gateway", "gw-toretsk-1", "--state", "all", "--csv")
    assert result.exit_code == 0 and "signal_low" in result.output and "gateway_offline" not in result.output

    result = run("alert", "list", "--state", "closed")
    assert result.exit_code == 2 and "state" in result.output
    result = run("alert", "ack", "424242")
    assert result.exit_code == 2 and "alert" in result.output
