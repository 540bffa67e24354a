"""Independent oracle: CPython zoneinfo fed a footer-only TZif."""
import io, struct, zoneinfo
from datetime import datetime, timezone, timedelta

def tzif_footer_only(rule):
    hdr = lambda: b"TZif2" + b"\0"*15 + struct.pack(">6l", 0, 0, 0, 0, 1, 4)
    block = struct.pack(">lbB", 0, 0, 0) + b"UTC\0"
    return hdr() + block + hdr() + block + b"\n" + rule.encode() + b"\n"

_cache = {}
def zone(rule):
    z = _cache.get(rule)
    if z is None:
        z = _cache[rule] = zoneinfo.ZoneInfo.from_file(io.BytesIO(tzif_footer_only(rule)), key=rule)
    return z

def local(rule, t):
    d = datetime.fromtimestamp(t, zone(rule))
    off = int(d.utcoffset().total_seconds())
    dst = bool(d.dst())
    return [d.year, d.month, d.day, d.hour, d.minute, d.second, d.isoweekday(), d.timetuple().tm_yday], off, dst
