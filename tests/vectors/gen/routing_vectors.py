"""Hand-specified routing vectors; datetime only computes the instants."""
import json
from datetime import datetime, timezone, timedelta

def kyiv(y, mo, d, h=0, mi=0, dst=True):
    off = 3 if dst else 2
    return int(datetime(y, mo, d, h, mi, tzinfo=timezone(timedelta(hours=off))).timestamp())

REF = {
  "schema": 1, "gateway": "gw-toretsk-1", "version": 7, "issued_at": 1469048400,
  "tz": "EET-2EEST,M3.5.0/3,M10.5.0/4",
  "deny": ["+7", "+38064", "+380622", "+380623"],
  "closed": ["2016-08-24"],
  "targets": {
    "mariupol-102": {"number": "+380629000102", "via": ["gsm2"], "ring_timeout_s": 25, "max_calls": 3},
    "kramatorsk-102": {"number": "+380626000102", "via": ["gsm2", "gsm1"], "max_calls": 2},
    "donetsk-102": {"number": "+380622000102", "via": ["gsm2"]},
    "info-505": {"number": "+380629000505", "via": ["gsm2"], "ring_timeout_s": 20},
    "hotline-122": {"number": "+380443000122", "via": ["gsm2"], "max_calls": 1},
    "switchboard": {"number": "1551", "via": ["fxo1"]}
  },
  "routes": [
    {"id": "police-102", "port": "gsm1", "caller": [], "from": None, "until": None,
     "hours": [{"days": "1234567", "start": "00:00", "end": "24:00"}],
     "targets": ["mariupol-102", "kramatorsk-102"], "strategy": "sequential",
     "fallback": {"action": "callback"}, "after_hours": {"action": "reject"}},
    {"id": "police-102-kramatorsk", "port": "gsm1", "caller": ["+380626"],
     "targets": ["kramatorsk-102", "mariupol-102"], "fallback": {"action": "callback"}},
    {"id": "toretsk-switch", "port": "*", "caller": ["+380624"], "from": 1469048400,
     "targets": ["mariupol-102"], "fallback": {"action": "callback"}},
    {"id": "info-505", "port": "fxo1",
     "hours": [{"days": "1234567", "start": "09:00", "end": "19:00"}],
     "targets": ["info-505"], "after_hours": {"action": "callback"}},
    {"id": "night-line", "port": "gsm3",
     "hours": [{"days": "5", "start": "22:00", "end": "06:00"}],
     "targets": ["hotline-122"], "after_hours": {"action": "forward", "target": "mariupol-102"}},
    {"id": "occupied", "port": "gsm4", "targets": ["donetsk-102"],
     "fallback": {"action": "forward", "target": "donetsk-102"}},
    {"id": "mixed", "port": "gsm6", "targets": ["donetsk-102", "hotline-122", "switchboard"],
     "fallback": {"action": "callback"}},
    {"id": "rr", "port": "gsm5", "strategy": "round_robin",
     "targets": ["mariupol-102", "kramatorsk-102", "hotline-122"], "fallback": {"action": "forward", "target": "switchboard"}},
    {"id": "any-port", "port": "*", "targets": ["hotline-122"],
     "fallback": {"action": "forward", "target": "mariupol-102"}},
    {"id": "toretsk-old", "port": "gsm1", "caller": ["+380624"], "until": 1469048400,
     "targets": ["kramatorsk-102"]}
  ]
}

cases = []
def dec(name, port, caller, now, action, route, targets, reason, busy=None, turn=0, table="ref", keys=None, menu=None, option=None):
    c = {"name": name, "op": "route_decide", "table": table, "port": port, "caller": caller, "now": now,
         "expect": {"action": action, "route": route, "targets": targets, "reason": reason}}
    if busy is not None: c["busy"] = busy
    if turn: c["turn"] = turn
    if keys is not None: c["keys"] = keys
    if menu is not None: c["expect"]["menu"], c["expect"]["option"] = menu, option
    cases.append(c)

T = kyiv(2016, 7, 25, 12)  # Monday noon, summer
dec("police dials mariupol first", "gsm1", "+380501112233", T, "dial", "police-102", ["mariupol-102", "kramatorsk-102"], "ok")
dec("longest caller prefix wins", "gsm1", "+380626123456", T, "dial", "police-102-kramatorsk", ["kramatorsk-102", "mariupol-102"], "ok")
dec("caller without id matches only open routes", "gsm1", None, T, "dial", "police-102", ["mariupol-102", "kramatorsk-102"], "ok")
dec("empty caller string", "gsm1", "", T, "dial", "police-102", ["mariupol-102", "kramatorsk-102"], "ok")
dec("busy mariupol at cap skipped", "gsm1", "+380501112233", T, "dial", "police-102", ["kramatorsk-102"], "ok", busy={"mariupol-102": 3})
dec("below cap still dialled", "gsm1", "+380501112233", T, "dial", "police-102", ["mariupol-102", "kramatorsk-102"], "ok", busy={"mariupol-102": 2, "kramatorsk-102": 1})
dec("all busy gives callback", "gsm1", "+380501112233", T, "callback", "police-102", [], "all_busy", busy={"mariupol-102": 3, "kramatorsk-102": 2})
dec("toretsk switched over after the date", "gsm1", "+380624555000", T, "dial", "toretsk-switch", ["mariupol-102"], "ok")
before = 1469048400 - 1
dec("toretsk before switch-over stays old", "gsm1", "+380624555000", before, "dial", "toretsk-old", ["kramatorsk-102"], "ok")
dec("switch-over instant is inclusive from", "gsm1", "+380624555000", 1469048400, "dial", "toretsk-switch", ["mariupol-102"], "ok")
dec("named port beats star at equal prefix", "gsm1", "+380501112233", T, "dial", "police-102", ["mariupol-102", "kramatorsk-102"], "ok")
dec("star route serves unknown port", "gsm9", "+380501112233", T, "dial", "any-port", ["hotline-122"], "ok")
dec("star route with prefix on other port", "gsm9", "+380624555000", T, "dial", "toretsk-switch", ["mariupol-102"], "ok")
dec("star before switch-over", "gsm9", "+380624555000", before, "dial", "any-port", ["hotline-122"], "ok")
dec("star fallback forward when busy", "gsm9", "+380501112233", T, "forward", "any-port", ["mariupol-102"], "all_busy", busy={"hotline-122": 1})
# info 505: 09:00-19:00 local
dec("505 open at 09:00", "fxo1", "+380501112233", kyiv(2016, 7, 25, 9, 0), "dial", "info-505", ["info-505"], "ok")
dec("505 closed at 08:59", "fxo1", "+380501112233", kyiv(2016, 7, 25, 8, 59), "callback", "info-505", [], "after_hours")
dec("505 end exclusive 19:00", "fxo1", "+380501112233", kyiv(2016, 7, 25, 19, 0), "callback", "info-505", [], "after_hours")
dec("505 open 18:59", "fxo1", "+380501112233", kyiv(2016, 7, 25, 18, 59), "dial", "info-505", ["info-505"], "ok")
dec("505 winter time offset", "fxo1", "+380501112233", kyiv(2016, 12, 5, 9, 30, dst=False), "dial", "info-505", ["info-505"], "ok")
dec("505 winter 08:30 local is 06:30Z", "fxo1", "+380501112233", kyiv(2016, 12, 5, 8, 30, dst=False), "callback", "info-505", [], "after_hours")
dec("closed day overrides hours", "fxo1", "+380501112233", kyiv(2016, 8, 24, 12), "callback", "info-505", [], "closed_day")
dec("closed day applies to routes without hours", "gsm1", "+380501112233", kyiv(2016, 8, 24, 12), "reject", "police-102", [], "closed_day")
dec("closed day starts at local midnight", "gsm1", "+380501112233", kyiv(2016, 8, 24, 0, 0), "reject", "police-102", [], "closed_day")
dec("day before closed day", "gsm1", "+380501112233", kyiv(2016, 8, 23, 23, 59), "dial", "police-102", ["mariupol-102", "kramatorsk-102"], "ok")
# night line: Friday 22:00 -> Saturday 06:00. 2016-07-29 is a Friday.
dec("night line friday 23:00", "gsm3", "+380501112233", kyiv(2016, 7, 29, 23), "dial", "night-line", ["hotline-122"], "ok")
dec("night line saturday 05:59 belongs to friday", "gsm3", "+380501112233", kyiv(2016, 7, 30, 5, 59), "dial", "night-line", ["hotline-122"], "ok")
dec("night line saturday 06:00 closed", "gsm3", "+380501112233", kyiv(2016, 7, 30, 6, 0), "forward", "night-line", ["mariupol-102"], "after_hours")
dec("night line saturday 23:00 closed", "gsm3", "+380501112233", kyiv(2016, 7, 30, 23), "forward", "night-line", ["mariupol-102"], "after_hours")
dec("night line friday 05:00 closed (thursday not listed)", "gsm3", "+380501112233", kyiv(2016, 7, 29, 5), "forward", "night-line", ["mariupol-102"], "after_hours")
# deny
dec("denied target never dialled, forward to denied rejects", "gsm4", "+380501112233", T, "reject", "occupied", [], "denied")
dec("denied target dropped from list", "gsm6", "+380501112233", T, "dial", "mixed", ["hotline-122", "switchboard"], "ok")
dec("denied dropped, free targets kept", "gsm6", "+380501112233", T, "dial", "mixed", ["hotline-122", "switchboard"], "ok", busy={"hotline-122": 0})
dec("denied plus busy gives all_busy", "gsm2", "+1", 1000, "callback", "denied-busy", [], "all_busy", busy={"t": 0, "h": 1}, table="deny2")
dec("all denied gives denied", "gsm3", "+1", 1000, "callback", "all-denied", [], "denied", busy={"h": 1}, table="deny2")
dec("short number target dialled when others busy", "gsm6", "+380501112233", T, "dial", "mixed", ["switchboard"], "ok", busy={"hotline-122": 1})
# rr
dec("round robin turn 0", "gsm5", "+380501112233", T, "dial", "rr", ["mariupol-102", "kramatorsk-102", "hotline-122"], "ok")
dec("round robin turn 1", "gsm5", "+380501112233", T, "dial", "rr", ["kramatorsk-102", "hotline-122", "mariupol-102"], "ok", turn=1)
dec("round robin turn 5 wraps", "gsm5", "+380501112233", T, "dial", "rr", ["hotline-122", "mariupol-102", "kramatorsk-102"], "ok", turn=5)
dec("round robin rotates before busy filter", "gsm5", "+380501112233", T, "dial", "rr", ["hotline-122", "mariupol-102"], "ok", turn=2, busy={"kramatorsk-102": 2})
# turn as a mapping {route id, or "<menu id>/<key>": counter}: the chosen route's own entry, absent = 0
dec("round robin turn mapping: the route's entry", "gsm5", "+380501112233", T, "dial", "rr", ["kramatorsk-102", "hotline-122", "mariupol-102"], "ok", turn={"rr": 4, "other": 2})
dec("round robin turn mapping: absent route is turn 0", "gsm5", "+380501112233", T, "dial", "rr", ["mariupol-102", "kramatorsk-102", "hotline-122"], "ok", turn={"other": 1})
dec("round robin turn mapping: a menu key of the same id is another entry", "gsm5", "+380501112233", T, "dial", "rr", ["hotline-122", "mariupol-102", "kramatorsk-102"], "ok", turn={"rr": 2, "rr/2": 1})
dec("round robin all busy forwards", "gsm5", "+380501112233", T, "forward", "rr", ["switchboard"], "all_busy", busy={"kramatorsk-102": 2, "mariupol-102": 3, "hotline-122": 5})
# no route
small = {"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "targets": {"t": {"number": "+3801", "via": ["gsm2"]}},
         "routes": [{"id": "r", "port": "gsm1", "caller": ["+38050"], "targets": ["t"]}]}
dec("no route for other caller", "gsm1", "+380671112233", 1700000000, "reject", None, [], "no_route", table="small")
dec("no route for other port", "gsm2", "+380501112233", 1700000000, "reject", None, [], "no_route", table="small")
dec("default fallback reject", "gsm1", "+380501112233", 1700000000, "dial", "r", ["t"], "ok", table="small")
dec("max_calls absent means no cap", "gsm1", "+380501112233", 1700000000, "dial", "r", ["t"], "ok", busy={"t": 99}, table="small")
timed = {"schema": 1, "gateway": "gw-a", "version": 2, "tz": "<+09>-9", "targets": {"t": {"number": "+3801", "via": ["gsm2"], "max_calls": 0},
         "u": {"number": "+3802", "via": ["gsm2"]}},
         "routes": [{"id": "r", "port": "gsm1", "from": 1000, "until": 2000, "targets": ["u"]},
                    {"id": "zero-cap", "port": "gsm2", "targets": ["t"]},
                    {"id": "tokyo-hours", "port": "gsm3", "hours": [{"days": "12345", "start": "09:00", "end": "17:00"}], "targets": []}]}
dec("until is exclusive", "gsm1", "+1", 2000, "reject", None, [], "no_route", table="timed")
dec("from inclusive", "gsm1", "+1", 1000, "dial", "r", ["u"], "ok", table="timed")
dec("max_calls 0 is busy even without busy counts", "gsm2", "+1", 1000, "reject", "zero-cap", [], "all_busy", table="timed")
dec("before from", "gsm1", "+1", 999, "reject", None, [], "no_route", table="timed")
dec("max_calls 0 is always busy", "gsm2", "+1", 1000, "reject", "zero-cap", [], "all_busy", busy={}, table="timed")
# 2023-11-14 00:30 UTC = 09:30 JST Tuesday
dec("fixed offset zone opens at local 09:30", "gsm3", "+1", int(datetime(2023, 11, 14, 0, 30, tzinfo=timezone.utc).timestamp()), "reject", "tokyo-hours", [], "denied", table="timed")
dec("fixed offset zone closed at local 08:30", "gsm3", "+1", int(datetime(2023, 11, 13, 23, 30, tzinfo=timezone.utc).timestamp()), "reject", "tokyo-hours", [], "after_hours", table="timed")
dec("fixed offset zone weekend closed", "gsm3", "+1", int(datetime(2023, 11, 18, 3, 0, tzinfo=timezone.utc).timestamp()), "reject", "tokyo-hours", [], "after_hours", table="timed")

# DESIGN §5a fall-through: a night route listed before the day route yields to it out of its hours
night = {"schema": 1, "gateway": "gw-a", "version": 1, "tz": "EET-2EEST,M3.5.0/3,M10.5.0/4", "closed": ["2016-08-24"],
         "targets": {"day": {"number": "+3801", "via": ["gsm2"]}, "night": {"number": "+3802", "via": ["gsm2"]},
                     "vip": {"number": "+3803", "via": ["gsm2"]}},
         "routes": [{"id": "police-night", "port": "gsm1", "hours": [{"days": "1234567", "start": "22:00", "end": "06:00"}],
                     "targets": ["night"], "after_hours": {"action": "next"}},
                    {"id": "vip-office", "port": "gsm1", "caller": ["+38050"], "hours": [{"days": "12345", "start": "09:00", "end": "17:00"}],
                     "targets": ["vip"], "after_hours": {"action": "next"}},
                    {"id": "police-day", "port": "gsm1", "targets": ["day"], "fallback": {"action": "callback"}},
                    {"id": "only-night", "port": "gsm3", "hours": [{"days": "1234567", "start": "22:00", "end": "06:00"}],
                     "targets": ["night"], "after_hours": {"action": "next"}}]}
dec("next: the night route serves the night", "gsm1", "+380671112233", kyiv(2016, 7, 25, 23), "dial", "police-night", ["night"], "ok", table="night")
dec("next: out of its hours the night route yields to the day route", "gsm1", "+380671112233", kyiv(2016, 7, 25, 14), "dial", "police-day", ["day"], "ok", table="night")
dec("next: a longer caller prefix first, then down the candidates", "gsm1", "+380501112233", kyiv(2016, 7, 30, 14), "dial", "police-day", ["day"], "ok", table="night")
dec("next: the longer caller prefix wins in its hours", "gsm1", "+380501112233", kyiv(2016, 7, 25, 14), "dial", "vip-office", ["vip"], "ok", table="night")
dec("next: a closed day passes over the route too", "gsm1", "+380501112233", kyiv(2016, 8, 24, 14), "reject", "police-day", [], "closed_day", table="night")
dec("next: no candidate left rejects with no route", "gsm3", "+380671112233", kyiv(2016, 7, 25, 14), "reject", None, [], "after_hours", table="night")
dec("next: the only route open at night", "gsm3", "+380671112233", kyiv(2016, 7, 26, 5, 59), "dial", "only-night", ["night"], "ok", table="night")

# DESIGN §5a calendars: per-route closed dates; police never closes, the 505 line closes on the region's holidays
cal = {"schema": 1, "gateway": "gw-a", "version": 1, "tz": "EET-2EEST,M3.5.0/3,M10.5.0/4", "closed": ["2016-08-24"],
       "calendars": {"region": ["2016-08-24", "2016-01-01"], "mariupol": ["2016-09-11"]},
       "targets": {"police": {"number": "+3801", "via": ["gsm2"]}, "info": {"number": "+3802", "via": ["gsm2"]}},
       "routes": [{"id": "police-102", "port": "gsm1", "targets": ["police"], "closed": []},
                  {"id": "info-505", "port": "gsm3", "targets": ["info"], "closed": ["region", "mariupol"],
                   "after_hours": {"action": "callback"}},
                  {"id": "v1-route", "port": "gsm4", "targets": ["info"]}]}
dec("calendars: an emergency line with closed [] is open on a holiday", "gsm1", "+380671112233", kyiv(2016, 8, 24, 12), "dial", "police-102", ["police"], "ok", table="cal")
dec("calendars: a route closes on its calendars' dates", "gsm3", "+380671112233", kyiv(2016, 8, 24, 12), "callback", "info-505", [], "closed_day", table="cal")
dec("calendars: the union of the route's calendars", "gsm3", "+380671112233", kyiv(2016, 9, 11, 12), "callback", "info-505", [], "closed_day", table="cal")
dec("calendars: open on other days", "gsm3", "+380671112233", kyiv(2016, 9, 12, 12), "dial", "info-505", ["info"], "ok", table="cal")
dec("calendars: a route without closed keeps the table's closed", "gsm4", "+380671112233", kyiv(2016, 8, 24, 12), "reject", "v1-route", [], "closed_day", table="cal")
dec("calendars: the table's closed does not apply to a route with closed", "gsm3", "+380671112233", kyiv(2016, 1, 2, 12), "dial", "info-505", ["info"], "ok", table="cal")

# DESIGN §5a menus: the city hall's one number; key 2 the registry, no key (or an unknown one) the operator
hall = {"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "deny": ["+7"], "closed": ["2016-08-24"],
        "targets": {"operator": {"number": "+3801", "via": ["gsm2"], "max_calls": 1},
                    "registry": {"number": "+3802", "via": ["gsm2"]}, "social": {"number": "+3803", "via": ["gsm2"]},
                    "moscow": {"number": "+74950000000", "via": ["gsm2"]}},
        "menus": {"hall": {"prompt": "hall-welcome", "timeout_s": 6, "tries": 2, "default": "0",
                           "options": {"0": {"targets": ["operator"], "fallback": {"action": "callback"}},
                                       "2": {"targets": ["registry", "social"], "strategy": "round_robin"},
                                       "9": {"targets": ["moscow"], "fallback": {"action": "callback"}}}}},
        "routes": [{"id": "city-hall", "port": "fxo1", "menu": "hall",
                    "hours": [{"days": "12345", "start": "08:00", "end": "17:00"}],
                    "after_hours": {"action": "callback"}}]}
MON = 1469448000  # 2016-07-25 12:00 UTC, a Monday
dec("menu: before any key the route plays its menu", "fxo1", "+380501", MON, "menu", "city-hall", [], "ok", table="hall", menu="hall", option=None)
dec("menu: key 2 dials the option's targets", "fxo1", "+380501", MON, "dial", "city-hall", ["registry", "social"], "ok", table="hall", keys="2", menu="hall", option="2")
dec("menu: the option's own strategy", "fxo1", "+380501", MON, "dial", "city-hall", ["social", "registry"], "ok", table="hall", keys="2", turn=1, menu="hall", option="2")
dec("menu: the option's turn in a mapping is menu/key", "fxo1", "+380501", MON, "dial", "city-hall", ["social", "registry"], "ok", table="hall", keys="2", turn={"hall/2": 3, "city-hall": 2, "hall": 2}, menu="hall", option="2")
dec("menu: a mapping without the option's entry is turn 0", "fxo1", "+380501", MON, "dial", "city-hall", ["registry", "social"], "ok", table="hall", keys="2", turn={"city-hall": 1, "hall/0": 1}, menu="hall", option="2")
dec("menu: no key in time takes the default", "fxo1", "+380501", MON, "dial", "city-hall", ["operator"], "ok", table="hall", keys="", menu="hall", option="0")
dec("menu: an unknown key takes the default", "fxo1", "+380501", MON, "dial", "city-hall", ["operator"], "ok", table="hall", keys="5", menu="hall", option="0")
dec("menu: the option's fallback when its targets are full", "fxo1", "+380501", MON, "callback", "city-hall", [], "all_busy", table="hall", keys="0", busy={"operator": 1}, menu="hall", option="0")
dec("menu: deny applies to an option's targets", "fxo1", "+380501", MON, "callback", "city-hall", [], "denied", table="hall", keys="9", menu="hall", option="9")
dec("menu: a closed route never plays its menu", "fxo1", "+380501", MON + 8 * 3600, "callback", "city-hall", [], "after_hours", table="hall")
dec("menu: nor on a closed day, key or not", "fxo1", "+380501", 1472040000, "callback", "city-hall", [], "closed_day", table="hall", keys="2")


def bad(name, path, mutate=None, text=None, reason=""):
    import copy
    c = {"name": name, "op": "route_load_error", "path": path}
    if text is not None:
        c["text"] = text
    else:
        t = copy.deepcopy(REF); mutate(t); c["body"] = t
    if reason: c["reason_contains"] = reason
    cases.append(c)

def setp(*path_val):
    def m(t):
        *path, key, val = path_val
        o = t
        for p in path: o = o[p]
        if val is DEL: del o[key]
        else: o[key] = val
    return m
DEL = object()
bad("hour 25", "routes[3].hours[0].end", setp("routes", 3, "hours", 0, "end", "25:00"))
bad("start 24:00 not allowed", "routes[3].hours[0].start", setp("routes", 3, "hours", 0, "start", "24:00"))
bad("minute 60", "routes[3].hours[0].start", setp("routes", 3, "hours", 0, "start", "09:60"))
bad("time without colon", "routes[3].hours[0].start", setp("routes", 3, "hours", 0, "start", "0900"))
bad("weekday 8", "routes[3].hours[0].days", setp("routes", 3, "hours", 0, "days", "8"))
bad("weekday 0", "routes[3].hours[0].days", setp("routes", 3, "hours", 0, "days", "0123"))
bad("empty days", "routes[3].hours[0].days", setp("routes", 3, "hours", 0, "days", ""))
bad("repeated weekday", "routes[3].hours[0].days", setp("routes", 3, "hours", 0, "days", "112"))
bad("duplicate route id", "routes[1].id", setp("routes", 1, "id", "police-102"))
bad("unknown target reference", "routes[0].targets[1]", setp("routes", 0, "targets", ["mariupol-102", "nowhere"]))
bad("forward without target", "routes[4].after_hours.target", setp("routes", 4, "after_hours", {"action": "forward"}))
bad("forward to unknown target", "routes[4].after_hours.target", setp("routes", 4, "after_hours", {"action": "forward", "target": "x"}))
bad("dial is not an applied action", "routes[0].fallback.action", setp("routes", 0, "fallback", {"action": "dial"}))
bad("unknown action", "routes[0].after_hours.action", setp("routes", 0, "after_hours", {"action": "voicemail"}))
bad("route closed names an unknown calendar", "routes[0].closed[0]", setp("routes", 0, "closed", ["nowhere"]))
bad("route closed not a list", "routes[0].closed", setp("routes", 0, "closed", "region"))
bad("calendar date invalid", "calendars.region[1]", setp("calendars", {"region": ["2016-08-24", "2016-02-30"]}))
bad("calendar not a list", "calendars.region", setp("calendars", {"region": "2016-08-24"}))
bad("calendar id invalid", "calendars.-bad", setp("calendars", {"-bad": []}))
bad("route names an unknown menu", "routes[0].menu", setp("routes", 0, "menu", "nowhere"))
bad("menu default not an option", "menus.m.default", setp("menus", {"m": {"prompt": "p", "default": "1", "options": {"0": {"targets": ["mariupol-102"]}}}}))
bad("menu key not a phone key", "menus.m.options.a", setp("menus", {"m": {"prompt": "p", "default": "0", "options": {"0": {"targets": ["mariupol-102"]}, "a": {"targets": []}}}}))
bad("menu option names an unknown target", "menus.m.options.0.targets[0]", setp("menus", {"m": {"prompt": "p", "default": "0", "options": {"0": {"targets": ["x"]}}}}))
bad("menu prompt too long", "menus.m.prompt", setp("menus", {"m": {"prompt": "p" * 65, "default": "0", "options": {"0": {"targets": []}}}}))
bad("menu without options", "menus.m.options", setp("menus", {"m": {"prompt": "p", "default": "0", "options": {}}}))
bad("menu tries out of range", "menus.m.tries", setp("menus", {"m": {"prompt": "p", "tries": 9, "default": "0", "options": {"0": {"targets": []}}}}))
bad("next is for after_hours only", "routes[0].fallback.action", setp("routes", 0, "fallback", {"action": "next"}))
bad("bad port name", "routes[0].port", setp("routes", 0, "port", "GSM1"))
bad("port name too long", "routes[0].port", setp("routes", 0, "port", "g" * 17))
bad("via bad port", "targets.mariupol-102.via[0]", setp("targets", "mariupol-102", "via", ["2gsm"]))
bad("via empty", "targets.mariupol-102.via", setp("targets", "mariupol-102", "via", []))
bad("non E.164 number", "targets.mariupol-102.number", setp("targets", "mariupol-102", "number", "+0380629000102"))
bad("number with spaces", "targets.mariupol-102.number", setp("targets", "mariupol-102", "number", "+380 629 000 102"))
bad("number too long", "targets.mariupol-102.number", setp("targets", "mariupol-102", "number", "+1234567890123456"))
bad("short number one digit", "targets.mariupol-102.number", setp("targets", "mariupol-102", "number", "1"))
bad("number missing", "targets.mariupol-102.number", setp("targets", "mariupol-102", "number", DEL))
bad("bad target id", "targets.bad id", setp("targets", "bad id", {"number": "+3801", "via": ["gsm1"]}))
bad("until before from", "routes[2].until", setp("routes", 2, "until", 1469048400))
bad("until equals from", "routes[2].until", setp("routes", 2, "until", 1469048000) if False else setp("routes", 2, "until", 1469048400))
bad("float version", "version", text='{"schema": 1, "gateway": "gw-a", "version": 1.0, "tz": "UTC0", "targets": {}, "routes": []}')
bad("float deep inside", "targets.t.ring_timeout_s", text='{"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "targets": {"t": {"number": "+3801", "via": ["gsm1"], "ring_timeout_s": 2.5}}, "routes": []}')
bad("exponent is a float", "routes[0].from", text='{"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "targets": {}, "routes": [{"id": "r", "port": "*", "targets": [], "from": 1e9}]}')
bad("body over 32 KiB", "body", text='{"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "targets": {}, "routes": [], "pad": "' + "x" * 32768 + '"}', reason="32768")
bad("not json", "body", text="{not json", reason="JSON")
bad("not an object", "body", text="[1, 2]")
bad("bad deny prefix", "deny[1]", setp("deny", ["+7", "38064"]))
bad("deny prefix +0", "deny[0]", setp("deny", ["+0"]))
bad("bad closed date", "closed[0]", setp("closed", ["2016-02-30"]))
bad("closed date format", "closed[0]", setp("closed", ["24.08.2016"]))
bad("bad tz", "tz", setp("tz", "Europe/Kyiv"))
bad("version zero", "version", setp("version", 0))
bad("version string", "version", setp("version", "7"))
bad("bool is not an integer", "version", setp("version", True))
bad("schema 2", "schema", setp("schema", 2))
bad("gateway id uppercase", "gateway", setp("gateway", "GW-1"))
bad("missing routes", "routes", setp("routes", DEL))
bad("missing targets", "targets", setp("targets", DEL))
bad("strategy unknown", "routes[7].strategy", setp("routes", 7, "strategy", "random"))
bad("ring timeout zero", "targets.mariupol-102.ring_timeout_s", setp("targets", "mariupol-102", "ring_timeout_s", 0))
bad("max_calls negative", "targets.mariupol-102.max_calls", setp("targets", "mariupol-102", "max_calls", -1))
bad("caller prefix with letters", "routes[1].caller[0]", setp("routes", 1, "caller", ["+38a"]))
bad("route id bad", "routes[0].id", setp("routes", 0, "id", "-police"))
bad("route not an object", "routes[0]", setp("routes", 0, "police"))
bad("hours not a list", "routes[3].hours", setp("routes", 3, "hours", {"days": "1"}))
bad("issued_at string", "issued_at", setp("issued_at", "yesterday"))

cases.append({"name": "reference table loads", "op": "route_load_ok", "table": "ref", "routes": 10, "targets": 6})
cases.append({"name": "unknown fields ignored", "op": "route_load_ok", "body": dict(REF, extra={"future": [1, "x"]}, version=8), "routes": 10, "targets": 6})
cases.append({"name": "empty table", "op": "route_load_ok", "body": {"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "targets": {}, "routes": []}, "routes": 0, "targets": 0})
# One JSON grammar on both interpreters (issue 8, finding 11): the strict text MicroPython's parser
# would let pass is refused at the field it is in, and nothing but a TableError leaves load().
def raw(name, path, text, reason=""):
    """A table body given as JSON text."""
    c = {"name": name, "op": "route_load_error", "path": path, "text": text}
    if reason:
        c["reason_contains"] = reason
    cases.append(c)


HEAD = '{"schema": 1, "gateway": "gw-a", "tz": "UTC0", "targets": {}, "routes": [], '
raw("json: float before a syntax error", "body", HEAD + '"version": 1.5, }')
raw("json: bad \\u escape", "tz", HEAD.replace('"UTC0"', '"UTC\\u035g"') + '"version": 1}')
raw("json: lone surrogate escape", "tz", HEAD.replace('"UTC0"', '"UTC\\udc00"') + '"version": 1}')
raw("json: trailing comma in a list", "deny", HEAD + '"version": 1, "deny": ["+7",]}')
raw("json: trailing comma in an object", "targets.a", HEAD.replace('"targets": {}', '"targets": {"a": {"number": "+3801", "via": ["gsm1"],}}') + '"version": 1}')
raw("json: leading zero", "version", HEAD + '"version": 01}')
raw("json: 1. is no number", "version", HEAD + '"version": 1.}')
raw("json: NaN", "version", HEAD + '"version": NaN}')
raw("json: integer beyond 64 bits", "version", HEAD + '"version": 9223372036854775808}', "2^63")
raw("json: raw control character in a string", "tz", HEAD.replace('"UTC0"', '"UTC\u00010"') + '"version": 1}')
raw("json: unknown escape", "tz", HEAD.replace('"UTC0"', '"UTC\\x0"') + '"version": 1}')
raw("json: missing comma", "deny", HEAD + '"version": 1, "deny": ["+7" "+8"]}')
raw("json: non-string key", "body", HEAD + '"version": 1, 7: 1}')
raw("json: nested more than 32 deep", "deny[0]", HEAD + '"version": 1, "deny": ' + "[" * 34 + "]" * 34 + "}", "32")
raw("json: a float in a field the loader ignores", "extra.a[1]", HEAD + '"version": 1, "extra": {"a": [1, 2.5]}}', "float")
raw("json: bad JSON in a field the loader ignores", "extra", HEAD + '"version": 1, "extra": {"a": [1, 2,]}}')
cases.append({"name": "json: a body that is not UTF-8", "op": "route_load_error", "text_hex": (HEAD + '"version": 1, "x": "\xff"}').encode("latin-1").hex(), "path": "x"})
cases.append({"name": "json: encoded surrogate in a string", "op": "route_load_error", "text_hex": (HEAD.encode().replace(b'"UTC0"', b'"UTC\xed\xa0\x800"') + b'"version": 1}').hex(), "path": "tz"})
cases.append({"name": "json: overlong UTF-8", "op": "route_load_error", "text_hex": (HEAD.encode().replace(b'"UTC0"', b'"UTC\xc0\xb00"') + b'"version": 1}').hex(), "path": "tz"})
cases.append({"name": "seal: body not UTF-8", "op": "route_seal_error", "body_hex": "7b22223a22ff227d", "key": "11" * 32, "path": "body"})
cases.append({"name": "seal: encoded surrogate", "op": "route_seal_error", "body_hex": "7b22223a22eda080227d", "key": "11" * 32, "path": "body"})
cases.append({"name": "seal: body over 32 KiB", "op": "route_seal_error", "body_repeat": ["x", 32 * 1024 + 1], "key": "11" * 32, "path": "body"})
cases.append({"name": "envelope: bad \\u escape in the body string", "op": "route_unseal_error", "key": "11" * 32, "gateway": "gw-a", "path": "body",
              "payload": '{"v": 1, "alg": "HS256", "sig": "' + "0" * 64 + '", "body": "\\u035g"}'})
cases.append({"name": "envelope: v with a trailing comma", "op": "route_unseal_error", "key": "11" * 32, "gateway": "gw-a", "path": "envelope",
              "payload": '{"v": 1, "alg": "HS256", "sig": "' + "0" * 64 + '", "body": "{}",}'})
cases.append({"name": "envelope: v as 01", "op": "route_unseal_error", "key": "11" * 32, "gateway": "gw-a", "path": "v",
              "payload": '{"v": 01, "alg": "HS256", "sig": "' + "0" * 64 + '", "body": "{}"}'})

# HMAC vectors: RFC 4231 test cases 1, 2(key 'Jefe' is short -> our to_key refuses <16, use case 6 with 131-byte key), 4
cases.append({"name": "rfc4231 case 1", "op": "hmac", "key_hex": "0b" * 20, "msg_hex": "4869205468657265",
              "mac": "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"})
cases.append({"name": "rfc4231 case 4", "op": "hmac", "key_hex": "0102030405060708090a0b0c0d0e0f10111213141516171819",
              "msg_hex": "cd" * 50, "mac": "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"})
cases.append({"name": "rfc4231 case 6 long key", "op": "hmac", "key_hex": "aa" * 131,
              "msg_hex": b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
              "mac": "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"})
KEY = "11" * 32
OTHER = "22" * 32
cases.append({"name": "seal then unseal", "op": "route_unseal_ok", "table": "ref", "key": KEY, "gateway": "gw-toretsk-1", "current": 6})
cases.append({"name": "wrong key", "op": "route_unseal_error", "table": "ref", "key": KEY, "open_key": OTHER, "gateway": "gw-toretsk-1", "path": "sig"})
cases.append({"name": "tampered body", "op": "route_unseal_error", "table": "ref", "key": KEY, "tamper": ["+380629000102", "+380622000102"], "gateway": "gw-toretsk-1", "path": "sig"})
cases.append({"name": "other gateway", "op": "route_unseal_error", "table": "ref", "key": KEY, "gateway": "gw-kramatorsk-1", "path": "gateway"})
cases.append({"name": "same version", "op": "route_unseal_error", "table": "ref", "key": KEY, "gateway": "gw-toretsk-1", "current": 7, "path": "version"})
cases.append({"name": "older version", "op": "route_unseal_error", "table": "ref", "key": KEY, "gateway": "gw-toretsk-1", "current": 9, "path": "version"})
cases.append({"name": "envelope not json", "op": "route_unseal_error", "payload": "garbage", "key": KEY, "gateway": "gw-toretsk-1", "path": "envelope"})
cases.append({"name": "envelope wrong alg", "op": "route_unseal_error", "payload": '{"v": 1, "alg": "none", "sig": "", "body": "{}"}', "key": KEY, "gateway": "gw-toretsk-1", "path": "alg"})
cases.append({"name": "envelope missing sig", "op": "route_unseal_error", "payload": '{"v": 1, "alg": "HS256", "body": "{}"}', "key": KEY, "gateway": "gw-toretsk-1", "path": "sig"})
cases.append({"name": "signed but invalid table", "op": "route_unseal_error", "table": "ref", "mutate_key": ["tz", "Mars/Base"], "key": KEY, "gateway": "gw-toretsk-1", "path": "tz"})

deny2 = {"schema": 1, "gateway": "gw-a", "version": 1, "tz": "UTC0", "deny": ["+7"],
  "targets": {"ru": {"number": "+74950000000", "via": ["gsm1"]}, "h": {"number": "+380443000122", "via": ["gsm1"], "max_calls": 1}},
  "routes": [{"id": "denied-busy", "port": "gsm2", "targets": ["ru", "h"], "fallback": {"action": "callback"}},
             {"id": "all-denied", "port": "gsm3", "targets": ["ru"], "fallback": {"action": "callback"}}]}
doc = {"tables": {"ref": REF, "small": small, "timed": timed, "deny2": deny2, "night": night, "cal": cal, "hall": hall}, "cases": cases}
open("tests/vectors/routing.json", "w").write(json.dumps(doc, indent=1))
print(len(cases))
