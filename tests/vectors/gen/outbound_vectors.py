"""Hand-specified vectors for outbound calls and probes (DESIGN §5a): the table's `probes`, the `call` and
`probe` commands' args, the `outbound` and `probe` records. datetime only computes instants.
Run from the repository root: `python tests/vectors/gen/outbound_vectors.py` (writes outbound.json)."""
import copy
import json
from datetime import datetime, timedelta, timezone


def kyiv(y, mo, d, h=0, mi=0):
    return int(datetime(y, mo, d, h, mi, tzinfo=timezone(timedelta(hours=3))).timestamp())


BASE = {
    "schema": 1, "gateway": "gw-toretsk-1", "version": 3, "issued_at": 1469048400,
    "tz": "EET-2EEST,M3.5.0/3,M10.5.0/4", "deny": ["+7"],
    "targets": {
        "mariupol-102": {"number": "+380629000102", "via": ["gsm2"], "max_calls": 3},
        "info-505": {"number": "+380629000505", "via": ["gsm2", "gsm3"], "ring_timeout_s": 20},
        "moscow": {"number": "+74950000000", "via": ["gsm2"]},
    },
    "routes": [{"id": "police-102", "port": "gsm1", "targets": ["mariupol-102"]}],
    "probes": [
        {"target": "mariupol-102", "every_s": 3600},
        {"target": "info-505", "every_s": 600, "hours": [{"days": "12345", "start": "09:00", "end": "18:00"}]},
        {"target": "moscow", "every_s": 86400},
    ],
}
cases = []


def table_with(probes):
    t = copy.deepcopy(BASE)
    t["probes"] = probes
    for p in probes if type(probes) is list else ():
        if type(p) is dict and str(p.get("target")).startswith("t"):
            t["targets"][p["target"]] = {"number": "+38062900%04d" % len(t["targets"]), "via": ["gsm2"]}
    return t


cases.append({"name": "probes: a schedule per target, hours optional, a denied target allowed (never dialled)",
              "op": "route_probes", "table": "base",
              "probes": [["mariupol-102", 3600, False], ["info-505", 600, True], ["moscow", 86400, False]],
              "in_hours": [[1, kyiv(2016, 7, 21, 12), True], [1, kyiv(2016, 7, 21, 19), False],
                           [1, kyiv(2016, 7, 23, 12), False], [0, kyiv(2016, 7, 23, 3), True]]})
for name, probes in (("absent", None), ("null", "null"), ("empty", [])):
    t = copy.deepcopy(BASE)
    if probes is None:
        del t["probes"]
    else:
        t["probes"] = None if probes == "null" else probes
    cases.append({"name": "probes " + name + ": none", "op": "route_probes", "body": t, "probes": []})

ERRORS = [
    ("probes not a list", {"x": 1}, "probes", None),
    ("probe not an object", ["mariupol-102"], "probes[0]", "object"),
    ("probe target missing", [{"every_s": 600}], "probes[0].target", "required"),
    ("probe target unknown", [{"target": "nowhere", "every_s": 600}], "probes[0].target", "no target"),
    ("probe target not a string", [{"target": 5, "every_s": 600}], "probes[0].target", "string"),
    ("probe target twice", [{"target": "info-505", "every_s": 600}, {"target": "info-505", "every_s": 900}],
     "probes[1].target", "probes[0]"),
    ("probe every_s missing", [{"target": "info-505"}], "probes[0].every_s", "required"),
    ("probe every_s below ten minutes", [{"target": "info-505", "every_s": 599}], "probes[0].every_s", "600"),
    ("probe every_s above a week", [{"target": "info-505", "every_s": 604801}], "probes[0].every_s", "604800"),
    ("probe every_s a string", [{"target": "info-505", "every_s": "600"}], "probes[0].every_s", "integer"),
    ("probe every_s true", [{"target": "info-505", "every_s": True}], "probes[0].every_s", "integer"),
    ("probe hours not a list", [{"target": "info-505", "every_s": 600, "hours": "9-18"}], "probes[0].hours",
     "list"),
    ("probe hours bad end", [{"target": "mariupol-102", "every_s": 600},
                             {"target": "info-505", "every_s": 600,
                              "hours": [{"days": "12345", "start": "09:00", "end": "25:00"}]}],
     "probes[1].hours[0].end", "time of day"),
    ("probe hours bad days", [{"target": "info-505", "every_s": 600,
                               "hours": [{"days": "8", "start": "09:00", "end": "18:00"}]}],
     "probes[0].hours[0].days", "weekdays"),
    ("too many probes", [{"target": "t%02d" % i, "every_s": 600} for i in range(65)], "probes", "64"),
]
for name, probes, path, reason in ERRORS:
    case = {"name": name, "op": "route_load_error", "body": table_with(probes), "path": path}
    if reason:
        case["reason_contains"] = reason
    cases.append(case)
cases.append({"name": "probe float every_s", "op": "route_load_error",
              "text": json.dumps(table_with([{"target": "info-505", "every_s": 600}])).replace(
                  '"every_s": 600', '"every_s": 600.0'), "path": "probes[0].every_s", "reason_contains": "float"})

# commands (DESIGN §5a)
CALL = {"agent": "+380629000505", "citizen": "+380671234567"}
cases.append({"name": "cmd call", "op": "msg_valid", "kind": "cmd", "payload": {"id": "c1", "op": "call", "args": CALL}})
cases.append({"name": "cmd call with via, ring timeout and unknown args", "op": "msg_valid", "kind": "cmd",
              "payload": {"id": "c1", "op": "call", "args": dict(CALL, via="gsm3", ring_timeout_s=600, note="x")}})
cases.append({"name": "cmd call short numbers", "op": "msg_valid", "kind": "cmd",
              "payload": {"id": "c1", "op": "call", "args": {"agent": "1505", "citizen": "102"}}})
cases.append({"name": "cmd probe", "op": "msg_valid", "kind": "cmd",
              "payload": {"id": "c2", "op": "probe", "args": {"target": "info-505"}}})
BAD_CMDS = [
    ("cmd call without args", {"id": "c1", "op": "call"}, "args.agent", "required"),
    ("cmd call agent missing", {"id": "c1", "op": "call", "args": {"citizen": "+380671234567"}}, "args.agent",
     "required"),
    ("cmd call citizen missing", {"id": "c1", "op": "call", "args": {"agent": "1505"}}, "args.citizen", "required"),
    ("cmd call agent leading zero", {"id": "c1", "op": "call", "args": dict(CALL, agent="+0629000505")},
     "args.agent", "E.164"),
    ("cmd call citizen letters", {"id": "c1", "op": "call", "args": dict(CALL, citizen="+38067abc")},
     "args.citizen", "E.164"),
    ("cmd call citizen too long", {"id": "c1", "op": "call", "args": dict(CALL, citizen="+3806712345678901")},
     "args.citizen", "E.164"),
    ("cmd call citizen an integer", {"id": "c1", "op": "call", "args": dict(CALL, citizen=380671234567)},
     "args.citizen", None),
    ("cmd call citizen one digit", {"id": "c1", "op": "call", "args": dict(CALL, citizen="1")}, "args.citizen",
     None),
    ("cmd call via not a port", {"id": "c1", "op": "call", "args": dict(CALL, via="GSM3")}, "args.via", "port"),
    ("cmd call via null", {"id": "c1", "op": "call", "args": dict(CALL, via=None)}, "args.via", None),
    ("cmd call ring timeout 0", {"id": "c1", "op": "call", "args": dict(CALL, ring_timeout_s=0)},
     "args.ring_timeout_s", ">= 1"),
    ("cmd call ring timeout 601", {"id": "c1", "op": "call", "args": dict(CALL, ring_timeout_s=601)},
     "args.ring_timeout_s", "601"),
    ("cmd call ring timeout a string", {"id": "c1", "op": "call", "args": dict(CALL, ring_timeout_s="30")},
     "args.ring_timeout_s", "integer"),
    ("cmd probe without target", {"id": "c2", "op": "probe", "args": {}}, "args.target", "required"),
    ("cmd probe target not an id", {"id": "c2", "op": "probe", "args": {"target": "info 505"}}, "args.target",
     "id"),
]
for name, payload, path, reason in BAD_CMDS:
    case = {"name": name, "op": "msg_invalid", "kind": "cmd", "payload": payload, "path": path}
    if reason:
        case["reason_contains"] = reason
    cases.append(case)
cases.append({"name": "cmd call float ring timeout", "op": "msg_invalid", "kind": "cmd",
              "payload": '{"id":"c1","op":"call","args":{"agent":"1505","citizen":"102","ring_timeout_s":30.0}}',
              "path": "args.ring_timeout_s", "reason_contains": "float"})

# records (DESIGN §5a)
OUT = {"seq": 7, "t": "outbound", "cmd": "c-77", "start": 1469048412, "port": "gsm3", "agent": "+380629000505",
       "citizen": "+380671234567", "outcome": "answered", "ring_s": 9, "talk_s": 120}
PROBE = {"seq": 8, "t": "probe", "start": 1469048500, "target": "info-505", "port": "gsm2", "outcome": "ringing",
         "pdd_ms": 2350}


def events(*records):
    return {"store_id": "f3a9c2e17b04", "records": list(records)}


cases.append({"name": "events outbound record", "op": "msg_valid", "kind": "events", "payload": events(OUT)})
for outcome in ("agent_no_answer", "citizen_no_answer", "citizen_busy", "failed"):
    cases.append({"name": "events outbound " + outcome, "op": "msg_valid", "kind": "events",
                  "payload": events(dict(OUT, outcome=outcome, talk_s=0))})
cases.append({"name": "events probe record", "op": "msg_valid", "kind": "events", "payload": events(PROBE)})
cases.append({"name": "events probe never dialled (denied)", "op": "msg_valid", "kind": "events",
              "payload": events(dict(PROBE, port=None, outcome="denied", pdd_ms=None))})
for outcome in ("busy", "no_answer", "unreachable", "failed"):
    cases.append({"name": "events probe " + outcome, "op": "msg_valid", "kind": "events",
                  "payload": events(dict(PROBE, outcome=outcome, pdd_ms=None))})
cases.append({"name": "events call, outbound and probe records", "op": "msg_valid", "kind": "events",
              "payload": events(dict(OUT, seq=1), dict(PROBE, seq=2))})
BAD_RECORDS = [
    ("outbound cmd missing", {k: v for k, v in OUT.items() if k != "cmd"}, "records[0].cmd", "required"),
    ("outbound cmd empty", dict(OUT, cmd=""), "records[0].cmd", "non-empty"),
    ("outbound cmd too long", dict(OUT, cmd="c" * 65), "records[0].cmd", "64"),
    ("outbound outcome unknown", dict(OUT, outcome="rejected"), "records[0].outcome", "citizen_busy"),
    ("outbound agent not a number", dict(OUT, agent="operator-7"), "records[0].agent", "E.164"),
    ("outbound citizen null", dict(OUT, citizen=None), "records[0].citizen", None),
    ("outbound port null", dict(OUT, port=None), "records[0].port", None),
    ("outbound port bad", dict(OUT, port="GSM-3"), "records[0].port", "port"),
    ("outbound start before 2000", dict(OUT, start=12), "records[0].start", "UTC seconds"),
    ("outbound ring_s over a week", dict(OUT, ring_s=604801), "records[0].ring_s", None),
    ("outbound talk_s negative", dict(OUT, talk_s=-1), "records[0].talk_s", None),
    ("probe target missing", {k: v for k, v in PROBE.items() if k != "target"}, "records[0].target", "required"),
    ("probe target not an id", dict(PROBE, target="info 505"), "records[0].target", "id"),
    ("probe port missing", {k: v for k, v in PROBE.items() if k != "port"}, "records[0].port", "required"),
    ("probe pdd_ms missing", {k: v for k, v in PROBE.items() if k != "pdd_ms"}, "records[0].pdd_ms", "required"),
    ("probe pdd_ms negative", dict(PROBE, pdd_ms=-5), "records[0].pdd_ms", None),
    ("probe pdd_ms above the longest ring", dict(PROBE, pdd_ms=600001), "records[0].pdd_ms", "600001"),
    ("probe outcome answered", dict(PROBE, outcome="answered"), "records[0].outcome", "ringing"),
]
for name, rec, path, reason in BAD_RECORDS:
    case = {"name": "events " + name, "op": "msg_invalid", "kind": "events", "payload": events(rec), "path": path}
    if reason:
        case["reason_contains"] = reason
    cases.append(case)
cases.append({"name": "outbound_record builds a valid record", "op": "msg_build", "ctor": "outbound_record",
              "args": [7, "c-77", 1469048412, "gsm3", "+380629000505", "+380671234567", "answered", 9, 120],
              "expect": OUT})
cases.append({"name": "probe_record builds a valid record", "op": "msg_build", "ctor": "probe_record",
              "args": [8, 1469048500, "info-505", "gsm2", "ringing", 2350], "expect": PROBE})
cases.append({"name": "outbound and probe vocabularies", "op": "msg_constants",
              "OUTBOUND_OUTCOMES": ["answered", "agent_no_answer", "citizen_no_answer", "citizen_busy", "failed"],
              "PROBE_OUTCOMES": ["ringing", "busy", "no_answer", "unreachable", "failed", "denied"]})
cases.append({"name": "outbound and probe bounds", "op": "msg_bounds", "MAX_RING_S": 600, "MAX_PDD_MS": 600000})

doc = {"tables": {"base": BASE}, "cases": cases}
with open("tests/vectors/outbound.json", "w") as f:
    f.write('{"tables": ' + json.dumps(doc["tables"]) + ',\n "cases": [\n')
    f.write(",\n".join(" " + json.dumps(c) for c in cases))
    f.write("\n]}\n")
print(len(cases))
