#!/usr/bin/env python3
"""Independent oracle for creditbar's daily resets, standard library only.

Prints one line per zone and local date: `ZONE YYYY-MM-DD UNIX_SECONDS`, where the instant is
the first instant of that local day (local midnight; where midnight does not exist, the first
instant of the day that does; where it happens twice, the earlier). It does not reason about
wall-clock times at all: it searches the UTC time line for the first second whose local date
(as zoneinfo reports it) is the day in question, so it shares no algorithm with the Rust code.

Usage: daily_resets.py [ZONE ...]   (defaults to the zones the Rust test checks)
"""

import sys
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

ZONES = [
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Europe/London",
    "Asia/Kolkata",
    "Pacific/Apia",
    "UTC",
    "Asia/Tehran",
    "America/Havana",
]
FIRST = date(2026, 1, 1)
LAST = date(2027, 12, 31)


def local_date(zone, t):
    return datetime.fromtimestamp(t, tz=timezone.utc).astimezone(zone).date()


def first_instant(zone, day):
    """Smallest whole second t with local_date(t) >= day (local dates never go backwards
    across a day boundary in these zones and years; checked below)."""
    noon_utc = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    lo = int((noon_utc - timedelta(days=2)).timestamp())  # local date is surely before day
    hi = int((noon_utc + timedelta(days=2)).timestamp())  # surely at or after day
    assert local_date(zone, lo) < day <= local_date(zone, hi), (zone, day)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if local_date(zone, mid) >= day:
            hi = mid
        else:
            lo = mid
    return hi


def main(zones):
    out = sys.stdout
    for name in zones:
        zone = ZoneInfo(name)
        day = FIRST
        previous = None
        while day <= LAST:
            t = first_instant(zone, day)
            # Each day starts strictly after the previous one, and the second before it still
            # reads as an earlier day: the bisection found the first instant.
            assert previous is None or t > previous, (name, day)
            assert local_date(zone, t - 1) < day, (name, day)
            out.write(f"{name} {day.isoformat()} {t}\n")
            previous = t
            day += timedelta(days=1)


if __name__ == "__main__":
    main(sys.argv[1:] or ZONES)
