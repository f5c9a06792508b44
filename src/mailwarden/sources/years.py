"""Turning the wall-clock stamps of log lines into timezone-aware datetimes.

Classic syslog stamps (``Nov 27 17:34:14``) carry neither a year nor a zone,
yet every later stage compares times across files and days, so the year has to
be inferred and the zone supplied. ``YearInference`` does that for one file.

Year rules (one instance per file, fed its lines in file order):

1. The *bound* is the first instant of the month after the reference (the
   file's mtime, or ``now``). No line is placed at or after it: a file cannot
   hold lines written after it was last modified, and the month granularity
   tolerates clock skew between the logging hosts and the file system. This is
   what puts a line whose month is after the reference month in the previous
   year.
2. The first stamp gets the latest year that keeps it before the bound.
3. Every later stamp gets the year (of the one before, the same, the one
   after) that puts it nearest to the latest time seen so far in the file
   (the *high-water mark*), still before the bound. A Dec 31 -> Jan 1 step
   therefore moves into the next year, while a line that is merely out of
   order (a skewed remote clock, a late writer) keeps the year of its
   neighbours and does not drag the mark back.
4. Feb 29 is only placed in leap years: when no year near the mark has one,
   the latest leap year before the bound is taken.

A file that spans more than about six months without lines, or more than a
year in total, cannot be placed correctly from stamps alone; pass ``now`` (or
fix the file's mtime) when reading such archives.

Zones: a stamp without an offset is local wall time in ``tz`` (``None`` means
the system zone, with its daylight-saving rules); stamps that carry an offset
keep it. Every result is converted to UTC, so that records from hosts in
different zones compare and merge correctly.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime, timedelta, tzinfo

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}

# Longest gap between leap years (around 2100) plus one: how far back Feb 29 may look.
_LEAP_SEARCH = 9


def _digits(text: str) -> int | None:
    """Parse ASCII digits only; ``int()`` alone would accept ``+1``, ``1_0`` and Arabic digits."""
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def _parse_bsd(stamp: str) -> tuple[int, int, int] | None:
    """Month, day and hour of ``Mmm dd hh:mm:ss`` (day may be space padded), or None."""
    if len(stamp) != 15 or stamp[3] != " " or stamp[6] != " " or stamp[9] != ":":
        return None
    if stamp[12] != ":":
        return None
    month = _MONTHS.get(stamp[:3])
    day_text = stamp[4:6]
    day = _digits(day_text[1] if day_text[0] == " " else day_text)
    hour = _digits(stamp[7:9])
    if month is None or day is None or hour is None:
        return None
    return month, day, hour


# ":mm:ss" -> offset into the hour; a leap second ":59:60" is folded onto ":59:59".
_MINUTES_SECONDS = {
    f":{minute:02}:{second:02}": timedelta(minutes=minute, seconds=min(second, 59))
    for minute in range(60)
    for second in range(61)
}


class YearInference:
    """Per-file clock: places year-less stamps and makes every stamp aware (UTC).

    Two bounded caches keep this off the per-line cost: ``cache`` maps whole
    stamp strings to results (``frame_line`` looks there first, since
    consecutive lines usually share their second) and ``_hours`` maps
    ``Mmm dd hh`` to the UTC start of that hour, so that a new second costs
    one addition. The hour cache assumes that zone offsets change on whole
    hours, which holds for every zone in use today. Both are cleared when the
    high-water mark enters a new year, so a stamp repeated a year later is
    never served the old year, and when they reach ``CACHE_MAX`` entries.
    """

    __slots__ = ("_bound", "_high", "_hours", "_tz", "cache")

    CACHE_MAX = 4096

    def __init__(self, reference: datetime | None = None, tz: tzinfo | None = None) -> None:
        ref = reference if reference is not None else datetime.now(UTC)
        if ref.tzinfo is not None:
            with suppress(OverflowError, ValueError, OSError):  # year 1 or 9999, far-off zone
                ref = ref.astimezone(tz) if tz is not None else ref.astimezone()
            ref = ref.replace(tzinfo=None)
        try:
            self._bound = datetime(ref.year + (ref.month == 12), ref.month % 12 + 1, 1)
        except ValueError:  # a reference in December 9999: nothing can be after it
            self._bound = datetime.max
        self._high: datetime | None = None
        self._tz = tz
        self._hours: dict[str, datetime | None] = {}
        self.cache: dict[str, datetime] = {}

    def bsd(self, stamp: str) -> datetime | None:
        """Resolve an RFC 3164 stamp (``Nov 27 17:34:14``); None when it is not one."""
        hour_key = stamp[:9]
        try:
            hour = self._hours[hour_key]
        except KeyError:
            hour = self._resolve_hour(stamp)
            if len(self._hours) >= self.CACHE_MAX:
                self._hours.clear()
            self._hours[hour_key] = hour
        if hour is None:
            return None
        offset = _MINUTES_SECONDS.get(stamp[9:])
        if offset is None:
            return None
        return self._remember(stamp, hour + offset)

    def _resolve_hour(self, stamp: str) -> datetime | None:
        """UTC start of the stamp's hour, after placing it in a year."""
        fields = _parse_bsd(stamp)
        if fields is None:
            return None
        wall = self._place(*fields)
        if wall is None:
            return None
        high = self._high
        if high is None or wall > high:
            if high is not None and wall.year != high.year:
                self.cache.clear()
                self._hours.clear()
            self._high = wall
        return self._aware(wall)

    def iso(self, stamp: str) -> datetime | None:
        """Resolve an ISO 8601 stamp; one without an offset is wall time in ``tz``."""
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return self._remember(stamp, self._aware(parsed))
        try:
            return self._remember(stamp, parsed.astimezone(UTC))
        except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
            return None

    def _remember(self, stamp: str, ts: datetime | None) -> datetime | None:
        if ts is not None:
            if len(self.cache) >= self.CACHE_MAX:
                self.cache.clear()
            self.cache[stamp] = ts
        return ts

    def _aware(self, wall: datetime) -> datetime | None:
        """Local wall time -> UTC; None when the zone arithmetic leaves the datetime range."""
        try:
            if self._tz is None:
                return wall.astimezone(UTC)  # naive means system local time here
            return wall.replace(tzinfo=self._tz).astimezone(UTC)
        except (OverflowError, ValueError, OSError):
            return None

    def _place(self, month: int, day: int, hour: int) -> datetime | None:
        """Pick the year for a stamp by the rules in the module docstring."""
        bound = self._bound
        anchor = self._high if self._high is not None else bound
        best: datetime | None = None
        for year in (anchor.year + 1, anchor.year, anchor.year - 1):
            try:
                wall = datetime(year, month, day, hour)
            except ValueError:  # Feb 29 in a common year, or not a date at all
                continue
            if wall < bound and (best is None or abs(wall - anchor) < abs(best - anchor)):
                best = wall
        if best is not None or not (month == 2 and day == 29):
            return best
        for year in range(anchor.year - 2, anchor.year - _LEAP_SEARCH, -1):
            try:
                wall = datetime(year, month, day, hour)
            except ValueError:
                continue
            if wall < bound:
                return wall
        return None
