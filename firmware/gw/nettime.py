"""The network's time as the modems report it, to UTC seconds (None when it is not a usable time).

`AT+CCLK?` (both dialects) reads the modem's clock; NITZ arrives unasked when the network sends its time
(at registration, and when it changes): a SIM800 with `AT+CLTS=1` reports `*PSUTTZ` (the network's UTC
and its zone), a SIM7600 with `AT+CTZR=2` reports `+CTZE` (zone, DST, and the local time, 3GPP 27.007).
"""

from protocols.tz import days_from_civil


def _unq(s):
    return s[1:-1] if len(s) >= 2 and s[0] == '"' and s[-1] == '"' else s


def _utc(y, mo, d, hh, mi, ss, zq=0):
    if not (2010 <= y < 2070 and 1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mi < 60 and ss < 61):
        return None  # 04/01/01 (SIM800), 80/01/06 (SIM7600): the modem never got network time
    return days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - zq * 900


def _stamp(s, zq, year0=0):
    """'yy/MM/dd,hh:mm:ss' (or 'yyyy/...') -> UTC seconds, `zq` quarter hours east of UTC."""
    yy, mo, dd, hh, mi, ss = [int(x) for x in s.replace(",", "/").replace(":", "/").split("/")]
    return _utc(year0 + yy, mo, dd, hh, mi, ss, zq)


def parse_cclk(text):
    """`+CCLK: "yy/MM/dd,hh:mm:ss±zz"` (local time, zz in quarter hours) -> UTC seconds, or None."""
    try:
        s = _unq(text[text.index(":") + 1:].strip())
        k = max(s.rfind("+"), s.rfind("-"))
        return _stamp(s[:k], int(s[k:]), 2000)
    except (ValueError, IndexError):
        return None


def parse_nitz(text):
    """`*PSUTTZ: yyyy,M,d,h,m,s,"±zz",dst` (UTC) or `+CTZE: "±zz",dst,"yyyy/MM/dd,hh:mm:ss"` (local time)
    -> UTC seconds; None for anything else (a +CTZE without its time, a torn line)."""
    try:
        body = text[text.index(":") + 1:].strip()
        if text.startswith("*PSUTTZ:"):
            f = body.split(",")
            return _utc(*[int(x) for x in f[:6]])
        if text.startswith("+CTZE:"):
            f = body.split(",", 2)
            if len(f) < 3:
                return None
            return _stamp(_unq(f[2].strip()), int(_unq(f[0].strip())))
    except (ValueError, IndexError, TypeError):
        pass
    return None
