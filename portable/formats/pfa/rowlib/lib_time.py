"""time.*: calendar fields of a timestamp (seconds since 1970 UTC) in an IANA time zone ("" is UTC)."""
from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from typing import Any

from . import err, fn

_LO, _HI = -62135596800, 253402300799
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@lru_cache(maxsize=256)
def _zone(name: str) -> Any:
    if name == "":
        return dt.timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _when(ts: float, zone: str, code: int) -> dt.datetime:
    """code: the function's base error code (+0 timezone, +1 range); for the is* functions base+1/+2."""
    if math.isnan(ts) or ts < _LO or ts > _HI:
        raise err("timestamp out of range", code + 1)
    z = _zone(zone)
    if z is None:
        raise err("unrecognized timezone string", code)
    return (_EPOCH + dt.timedelta(seconds=ts)).astimezone(z)


def _field(name: str, code: int, get: Any) -> None:
    fn(f"time.{name}")(lambda ts, zone: get(_when(ts, zone, code)))


_field("year", 40000, lambda d: d.year)
_field("monthOfYear", 40010, lambda d: d.month)
_field("dayOfYear", 40020, lambda d: d.timetuple().tm_yday)
_field("dayOfMonth", 40030, lambda d: d.day)
_field("dayOfWeek", 40040, lambda d: d.weekday())
_field("hourOfDay", 40050, lambda d: d.hour)
_field("minuteOfHour", 40060, lambda d: d.minute)
_field("secondOfMinute", 40070, lambda d: d.second)


def _is(name: str, code: int, get: Any) -> None:
    def run(ts: float, zone: str, low: float, high: float) -> bool:
        if low >= high:
            raise err("bad time range", code)
        v = get(_when(ts, zone, code + 1))
        return low <= v < high
    fn(f"time.{name}")(run)


_is("isSecondOfMinute", 40090, lambda d: d.second)
_is("isMinuteOfHour", 40100, lambda d: d.minute)
_is("isHourOfDay", 40110, lambda d: d.hour)
_is("isDayOfWeek", 40120, lambda d: d.weekday())
_is("isDayOfMonth", 40130, lambda d: d.day)
_is("isMonthOfYear", 40140, lambda d: d.month)
_is("isDayOfYear", 40150, lambda d: d.timetuple().tm_yday)

fn("time.isWeekend")(lambda ts, zone: _when(ts, zone, 40160).weekday() >= 5)


@fn("time.isWorkHours")
def is_work_hours(ts: float, zone: str) -> bool:
    d = _when(ts, zone, 40170)
    return d.weekday() < 5 and 9 <= d.hour < 17


@fn("time.makeTimestamp")
def make_timestamp(year: int, month: int, day: int, hour: int, minute: int, second: int, millisecond: int,
                   zone: str) -> float:
    z = _zone(zone)
    if z is None:
        raise err("unrecognized timezone string", 40080)
    try:
        d = dt.datetime(year, month, day, hour, minute, second, int(round(millisecond * 1000.0)), tzinfo=z)
    except (ValueError, OverflowError):
        raise err("timestamp undefined for given parameters", 40081) from None
    return (d - _EPOCH).total_seconds()
