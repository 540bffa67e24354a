"""Calls for the report tests, stored as the bridge stores them (records and hourly aggregates), on the
reference region (Europe/Kyiv: UTC+2 in winter, UTC+3 from 30 March 2025 01:00 UTC to 26 October).

The 505 line (port gsm3) in local 2025: 6 calls, 4 answered (3 within 20 s of ringing), 1 abandoned,
1 call-back (called back once, reached); talk 200 s; busiest month July, day 2025-07-15, hour 10:00.
One 505 call falls in local 2026 (though 2025 in UTC), one 102 call (gsm1) is not the 505 line's.
"""

from __future__ import annotations

from controller import reference
from controller.ingest.records import write_batch
from controller.models import OutboundCall, Record
from protocols import messages

STORE = "st-reports"
# (gateway, UTC start, port, caller, outcome, ring_s, talk_s)
CALLS = [
    ("gw-mariupol-1", 1735684200, "gsm3", "+380671000001", "answered", 5, 60),    # 2025-01-01 00:30 local
    ("gw-kramatorsk-1", 1743287400, "gsm3", "+380671000002", "answered", 25, 30),  # 2025-03-30 00:30 (+2)
    ("gw-mariupol-1", 1743294600, "gsm3", "+380671000003", "abandoned", 10, 0),   # 2025-03-30 02:30 (+2)
    ("gw-mariupol-1", 1752563400, "gsm3", "+380671000004", "answered", 20, 100),  # 2025-07-15 10:10 (+3)
    ("gw-toretsk-1", 1752565800, "gsm3", "+380671000005", "callback", 40, 0),     # 2025-07-15 10:50
    ("gw-toretsk-1", 1752566100, "gsm3", "+380671000006", "answered", 3, 10),     # 2025-07-15 10:55
    ("gw-mariupol-1", 1767220200, "gsm3", "+380671000007", "answered", 2, 20),    # 2026-01-01 00:30 local
    ("gw-mariupol-1", 1752564000, "gsm1", "+380671000008", "answered", 1, 50),    # 102, 2025-07-15 10:20
]
CALLBACK_AT = 1752570000  # the call-back called back at 2025-07-15 12:00 local, reached


def store_calls(s) -> dict[int, int]:
    """Seed the reference region and store CALLS (and one call back of the call-back); {index: record id}."""
    reference.seed(s)
    by_gw: dict[str, list] = {}
    for n, (gw, at, port, caller, outcome, ring, talk) in enumerate(CALLS, 1):
        by_gw.setdefault(gw, []).append(messages.call_record(n, at, port, caller, "info-505" if port == "gsm3"
                                                             else "police-102", outcome, None, 1, ring, talk, "ok"))
    for gw, records in by_gw.items():
        write_batch(s, [(gw, "events", messages.events(f"{STORE}-{gw}", records))], {"records": 0, "duplicates": 0})
    ids = {n: s.query(Record.id).filter(Record.store_id == f"{STORE}-{gw}", Record.seq == n).scalar()
           for n, (gw, *_) in enumerate(CALLS, 1)}
    s.add(OutboundCall(command_id="cb-1", gateway_id="gw-toretsk-1", agent="+380629000505", citizen=CALLS[4][3],
                       callback_id=ids[5], requested_by="otto", created_at=CALLBACK_AT, outcome="answered",
                       ended_at=CALLBACK_AT + 60))
    write_batch(s, [("gw-toretsk-1", "events", messages.events(f"{STORE}-out", [messages.outbound_record(
        1, "cb-1", CALLBACK_AT, "gsm2", "+380629000505", CALLS[4][3], "answered", 4, 60)]))],
        {"records": 0, "duplicates": 0})
    s.flush()
    return ids
