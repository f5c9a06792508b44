"""Framing ``journalctl -o json`` exports: one JSON object per line.

The journal already stores the syslog parts as separate fields, so no text is
split here; the work is refusing everything that is not exactly what
journald writes, because an export can be edited or crafted like any file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mailwarden.model import Record, Source

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _text(entry: dict[str, object], *names: str) -> str | None:
    """First of ``names`` that holds a non-empty string (journald writes nulls and byte lists)."""
    for name in names:
        value = entry.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _number(text: str | None, max_digits: int) -> int | None:
    if text is not None and text.isascii() and text.isdigit() and len(text) <= max_digits:
        return int(text)
    return None


def frame_journal_line(line: str, source: Source) -> Record | str:
    """Frame one export line; returns the skip reason instead when it is not usable.

    ``MESSAGE`` is a list of byte values when the original was not UTF-8: that
    is ``invalid_utf8``, as for a text line. ``SYSLOG_PID`` is preferred to
    ``_PID`` because it is what the program itself put in its syslog tag.
    """
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the C stack
        return "unframed"
    if not isinstance(entry, dict):
        return "unframed"
    message = entry.get("MESSAGE")
    if isinstance(message, list):
        return "invalid_utf8"
    if not isinstance(message, str):
        return "unframed"
    micros = _number(_text(entry, "__REALTIME_TIMESTAMP"), 18)
    program = _text(entry, "SYSLOG_IDENTIFIER", "_COMM")
    if micros is None or program is None:
        return "unframed"
    try:
        ts = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return "unframed"
    pid = _number(_text(entry, "SYSLOG_PID", "_PID"), 10)
    host = _text(entry, "_HOSTNAME") or ""
    return Record(ts, host, program, pid, message, source)
