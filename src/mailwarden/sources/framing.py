"""Cutting one text line into a ``Record``: the hot path of every run.

Accepted shapes, tried in this order (cheapest check first):

* RFC 3164 ``Nov 27 17:34:14 mx postfix/smtpd[7086]: message``;
* the same without a host, as Dovecot writes its own ``log_path``
  (``Nov 27 17:34:14 imap(alice)<7362><XwikeEVhgqR/AAAB>: Info: ...``) and as
  some small syslog daemons do;
* ISO 8601 stamps as rsyslog writes them with high precision
  (``2026-11-27T17:34:14.123456+01:00 mx postfix/smtpd[7086]: ...``), or with a
  space instead of the ``T`` (a common Dovecot ``log_timestamp``);
* RFC 5424 with its priority (``<34>1 2026-11-27T17:34:14.003Z mx postfix 7086 - - msg``)
  and RFC 3164 with a priority prefix (``<22>Nov 27 ...``), as seen on the wire.

Host or no host: a syslog host is a bare token followed by the tag, while a
host-less line starts with the tag itself, which always ends in ``:``. A host
never ends in ``:`` nor contains ``(``, and Dovecot's tag may hold a user name
in parentheses, so a first token with either is taken as the tag.

Everything is done with ``str.find`` and slicing, never a regex per line: this
function runs once per line of logs that reach tens of gigabytes. Tags and
stamps repeat endlessly, so both are cached (bounded).
"""

from __future__ import annotations

from datetime import datetime

from mailwarden.model import Record, Source
from mailwarden.sources.years import YearInference

__all__ = ["YearInference", "frame_line"]

_TAGS: dict[str, tuple[str, int | None]] = {}
_TAGS_MAX = 8192
_TAG_CACHE_LEN = 256
_MAX_STAMP = 40  # longer than any ISO stamp with nanoseconds and an offset


def _parse_tag(tag: str) -> tuple[str, int | None] | None:
    """``postfix/smtpd[7086]:`` -> (``postfix/smtpd``, 7086); None when there is no program.

    The key keeps its colon so that the hot path need not slice it off before
    the cache lookup. A tag without a numeric pid is all program.
    """
    tag = tag[:-1]
    pid = None
    if tag.endswith("]"):
        open_at = tag.rfind("[")
        if open_at >= 0:
            digits = tag[open_at + 1 : -1]
            if digits.isascii() and digits.isdigit() and len(digits) <= 10:
                pid = int(digits)
            tag = tag[:open_at]
    return (tag, pid) if tag else None


def _program(tag: str) -> tuple[str, int | None] | None:
    """Cached ``_parse_tag``: a busy server repeats a few hundred tags forever."""
    parsed = _TAGS.get(tag)
    if parsed is None:
        parsed = _parse_tag(tag)
        if parsed is None:
            return None
        if len(tag) <= _TAG_CACHE_LEN:  # a hostile line must not park 64 KiB in the cache
            if len(_TAGS) >= _TAGS_MAX:
                _TAGS.clear()
            _TAGS[tag] = parsed
    return parsed


def _split(line: str, start: int, ts: datetime, source: Source) -> Record | None:
    """Frame the part of ``line`` after the stamp: ``host tag: message`` or ``tag: message``."""
    parts = line[start:].split(" ", 2)
    host = parts[0]
    if host[-1:] == ":":  # no host: Dovecot log_path, or a syslog daemon that omits it
        parsed = _program(host)
        message = line[start + len(host) + 1 :]
        host = ""
    elif "(" in host:  # a Dovecot tag whose user name holds a space: never a host
        colon = line.find(": ", start)
        if colon < 0:
            return None
        parsed = _program(line[start : colon + 1])
        message = line[colon + 2 :]
        host = ""
    elif len(parts) == 3 and parts[1][-1:] == ":":
        parsed = _program(parts[1])
        message = parts[2]
    elif len(parts) == 2 and parts[1][-1:] == ":":  # a tag with an empty message
        parsed = _program(parts[1])
        message = ""
    else:
        return None
    if parsed is None:
        return None
    return Record(ts, host, parsed[0], parsed[1], message, source)


def frame_line(line: str, source: Source, clock: YearInference) -> Record | None:
    """Frame one line (no trailing newline); None when it has no stamp or no program."""
    # Fast path: a stamp seen before, then "host tag: message" with a known tag.
    # The cache holds only stamps that parsed, so a hit followed by a space frames
    # exactly as the general path below would, whichever shape the stamp had.
    ts = clock.cache.get(line[:15])
    if ts is not None and line[15:16] == " ":
        parts = line[16:].split(" ", 2)
        if len(parts) == 3:
            host = parts[0]
            parsed = _TAGS.get(parts[1])
            if parsed is not None and host[-1:] != ":" and "(" not in host:
                return Record(ts, host, parsed[0], parsed[1], parts[2], source)
        return _split(line, 16, ts, source)
    if line[15:16] == " " and line[3:4] == " ":
        ts = clock.bsd(line[:15])
        return None if ts is None else _split(line, 16, ts, source)
    if line[4:5] == "-":
        return _frame_iso(line, source, clock)
    if line[:1] == "<":
        return _frame_with_priority(line, source, clock)
    return None


def _frame_iso(line: str, source: Source, clock: YearInference) -> Record | None:
    """``2026-11-27T17:34:14.123+01:00 host tag: msg`` or ``2026-11-27 17:34:14 tag: msg``."""
    sep = line[10:11]
    if sep != "T" and not (sep == " " and line[13:14] == ":"):
        return None
    end = line.find(" ", 11, _MAX_STAMP + 1)
    if end < 0:
        return None
    stamp = line[:end]
    ts = clock.cache.get(stamp) or clock.iso(stamp)
    if ts is None:
        return None
    return _split(line, end + 1, ts, source)


def _frame_with_priority(line: str, source: Source, clock: YearInference) -> Record | None:
    """``<PRI>1 ...`` is RFC 5424; ``<PRI>`` before anything else is stripped and framed again."""
    close = line.find(">", 1, 5)
    if close < 2 or not (line[1:close].isascii() and line[1:close].isdigit()):
        return None
    if line.startswith("1 ", close + 1):
        return _frame_5424(line[close + 3 :], source, clock)
    rest = line[close + 1 :]
    if rest[:1] == "<":  # one priority only: no recursion on "<1><1><1>..."
        return None
    return frame_line(rest, source, clock)


def _skip_structured_data(text: str) -> int | None:
    """Index just after the STRUCTURED-DATA field at the start of ``text``, or None if broken.

    SD elements are ``[id key="value" ...]``; values escape ``"``, ``\\`` and ``]``
    with a backslash, and a ``]`` inside quotes does not close the element.
    """
    if text[:1] == "-":
        return 1
    at = 0
    size = len(text)
    while at < size and text[at] == "[":
        at += 1
        quoted = False
        while at < size:
            char = text[at]
            if char == "\\":
                at += 2
                continue
            if char == '"':
                quoted = not quoted
            elif char == "]" and not quoted:
                break
            at += 1
        else:
            return None
        at += 1
    return at if at > 0 else None


def _frame_5424(text: str, source: Source, clock: YearInference) -> Record | None:
    """``TIMESTAMP HOST APP-NAME PROCID MSGID SD [MSG]`` (the part after ``<PRI>1 ``)."""
    fields = text.split(" ", 5)
    if len(fields) < 6:
        return None
    stamp, host, app, procid, _msgid, rest = fields
    if stamp == "-" or app == "-" or not app or len(stamp) > _MAX_STAMP:
        return None
    ts = clock.cache.get(stamp) or clock.iso(stamp)
    if ts is None:
        return None
    sd_end = _skip_structured_data(rest)
    if sd_end is None:
        return None
    message = rest[sd_end + 1 :] if rest[sd_end : sd_end + 1] == " " else rest[sd_end:]
    if message.startswith("\ufeff"):  # RFC 5424 marks UTF-8 messages with a BOM
        message = message[1:]
    pid = int(procid) if procid.isascii() and procid.isdigit() and len(procid) <= 10 else None
    return Record(ts, "" if host == "-" else host, app, pid, message, source)
