import os, time
def local(rule, t):
    os.environ['TZ'] = rule
    time.tzset()
    s = time.localtime(t)
    return [s.tm_year, s.tm_mon, s.tm_mday, s.tm_hour, s.tm_min, s.tm_sec, s.tm_wday + 1, s.tm_yday], s.tm_gmtoff, bool(s.tm_isdst)
