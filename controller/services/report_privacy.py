"""Callers' numbers and privacy (issue 13, Operations): viewers see numbers masked (+38067*****02), and
after a retention period the call records lose their numbers while every count stays.

A purge clears the numbers only: the records keep their time, port, route, outcome, ring and talk seconds
(what every report counts), and the hourly aggregates are not touched, so a report reads the same before
and after. Outbound records lose the citizen's number (the `caller` column and `data.citizen`), and the
operators' outbound requests keep only a masked citizen number (that column may not be empty).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controller.models import OutboundCall, Record
from controller.services.errors import FieldError

MASKED_ROLES = ("viewer",)  # who sees callers' numbers masked when the setting is on
BATCH = 5000  # rows a purge rewrites per statement (one short transaction each)
MAX_BATCHES = 10_000  # bounds one purge (50 million rows)


def mask(number: Any) -> Any:
    """A number with its middle starred: the country and operator code and the last two digits stay, so a
    viewer can tell callers apart by region without learning who called. Non-text passes through."""
    if not isinstance(number, str) or not number:
        return number
    n = len(number)
    if n <= 4:
        return "*" * n
    keep = 6 if n >= 11 else max(1, (n - 2) * 3 // 8)
    return number[:keep] + "*" * (n - keep - 2) + number[-2:]


def masks_for(role: str | None, mask_callers: bool) -> bool:
    """Whether a user of this role sees numbers masked (the `mask_callers` setting on, a viewer)."""
    return bool(mask_callers) and role in MASKED_ROLES


class MaskedRecord:
    """A stored record as a page shows it to a viewer: every attribute as stored, the caller masked (a view:
    nothing is written back)."""

    def __init__(self, record, keys: tuple[str, ...] = ("caller",)):
        self._record, self._keys = record, keys

    def __getattr__(self, name: str):
        value = getattr(self._record, name)
        return mask(value) if name in self._keys else value


def shown(rows: list, masked: bool, keys: tuple[str, ...] = ("caller",)) -> list:
    """Rows (dicts or records) as a user sees them: with `masked`, each number in `keys` masked."""
    if not masked:
        return rows
    return [{**r, **{k: mask(r.get(k)) for k in keys if k in r}} if isinstance(r, dict) else MaskedRecord(r, keys)
            for r in rows]


def cutoff(retention_days: int, now: int | None = None) -> int | None:
    """The UTC second before which records lose their numbers; None when numbers are kept (0 days)."""
    if type(retention_days) is not int or not 0 <= retention_days <= 36500:
        raise FieldError("retention_days", "whole days from 0 (numbers kept) to 36500")
    if retention_days == 0:
        return None
    return int(now if now is not None else time.time()) - retention_days * 86400


def purge(s: Session, before: int, since: int | None = None) -> dict:
    """Clear the numbers of records (of any kind) that started before `before` (UTC seconds), in batches
    committed one by one, walking the `at` index forward (rows already cleared are not read again);
    `since`: only records from then on (the hourly duty's last cutoff, less a margin for late arrivals).
    Returns {"records", "outbound_requests"}: rows changed. Run again: nothing left."""
    if type(before) is not int or not (since is None or type(since) is int):
        raise FieldError("before", "UTC seconds")
    records, last = 0, since
    for _ in range(MAX_BATCHES):
        q = select(Record.id, Record.at).where(Record.at < before, Record.caller.is_not(None))
        if last is not None:
            q = q.where(Record.at >= last)
        rows = s.execute(q.order_by(Record.at, Record.id).limit(BATCH)).all()
        if not rows:
            break
        s.execute(update(Record).where(Record.id.in_([r.id for r in rows])).values(caller=None).execution_options(
            synchronize_session=False))
        records += len(rows)
        last = rows[-1].at
        s.commit()
    old = [Record.kind == "outbound", Record.at < before] + ([Record.at >= since] if since is not None else [])
    for rec in s.scalars(select(Record).where(*old)).yield_per(500):
        if isinstance(rec.data, dict) and rec.data.get("citizen") is not None:  # its caller column went above
            rec.data = {k: v for k, v in rec.data.items() if k != "citizen"}
    s.commit()
    requests = 0
    asked = [OutboundCall.created_at < before] + ([OutboundCall.created_at >= since] if since is not None else [])
    for oc in s.scalars(select(OutboundCall).where(*asked)).yield_per(500):
        if "*" not in oc.citizen:
            oc.citizen = mask(oc.citizen)
            requests += 1
    s.commit()
    return {"records": records, "outbound_requests": requests}
