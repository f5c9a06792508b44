"""Parsing --since/--until: absolute ISO 8601 times or durations back from now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_REL = re.compile(r"^(\d{1,6})\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``2026-11-27``, ``2026-11-27T17:00``, ``2026-11-27 17:00+01:00`` or ``24h``/``7d`` ago.

    Times without a zone are taken as local time, like the logs they are
    compared with.
    """
    text = text.strip()
    m = _REL.match(text)
    if m:
        base = now or datetime.now(UTC)
        return base - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r} (use 2026-11-27T17:00, or 24h / 7d ago)") from exc
    if ts.tzinfo is None:
        ts = ts.astimezone()
    return ts.astimezone(UTC)
