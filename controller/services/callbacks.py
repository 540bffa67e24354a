"""The call-back queue: callers the gateways promised a call back (outcome `callback`), oldest first,
with their city, attempts and notes; marked done by hand or when a call back reached them
(controller.services.outbound)."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.models import OPEN_CALLBACKS, CallbackNote, City, Gateway, Record
from controller.services.errors import FieldError, NotFound

PAGE = 200
NOTE_MAX = 500


def queue(s: Session, city: str = "") -> tuple[list[dict], int]:
    """Open call-backs, oldest first (at most PAGE), each with its city and notes; and how many are open."""
    if len(city) > 128:
        raise FieldError("city", "at most 128 characters")
    q = (select(Record, City.name, City.zone).outerjoin(Gateway, Gateway.id == Record.gateway_id)
         .outerjoin(City, City.id == Gateway.city_id).where(OPEN_CALLBACKS))
    if city:
        q = q.where(City.name == city)
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    rows = s.execute(q.order_by(Record.at, Record.id).limit(PAGE)).all()
    notes: dict[int, list[CallbackNote]] = {}
    if rows:
        for n in s.scalars(select(CallbackNote).where(CallbackNote.record_id.in_([r.id for r, _, _ in rows]))
                           .order_by(CallbackNote.at, CallbackNote.id)):
            notes.setdefault(n.record_id, []).append(n)
    return [{"id": r.id, "at": r.at, "caller": r.caller, "city": c, "zone": zone, "gateway": r.gateway_id,
             "route": r.route, "attempts": r.callback_attempts or 0, "notes": notes.get(r.id, [])}
            for r, c, zone in rows], total


def _callback(s: Session, call_id: int) -> Record:
    rec = s.scalars(select(Record).where(Record.id == call_id, Record.kind == "call",
                                         Record.outcome == "callback")).first() if 1 <= call_id < 2**63 else None
    if rec is None:
        raise NotFound("call_id", f"no call-back {call_id}")
    return rec


def done(s: Session, call_id: int) -> Record:
    """Mark a call-back done (again is harmless: the first time is kept)."""
    rec = _callback(s, call_id)
    if rec.callback_done_at is None:
        rec.callback_done_at = int(time.time())
    return rec


def add_note(s: Session, call_id: int, author: str, text: str) -> CallbackNote:
    text = text.strip() if isinstance(text, str) else ""
    if not 1 <= len(text) <= NOTE_MAX:
        raise FieldError("note.text", f"must be 1 to {NOTE_MAX} characters")
    if "\x00" in text:
        raise FieldError("note.text", "may not contain NUL")
    _callback(s, call_id)
    note = CallbackNote(record_id=call_id, at=int(time.time()), author=author[:64], text=text)
    s.add(note)
    s.flush()
    return note
