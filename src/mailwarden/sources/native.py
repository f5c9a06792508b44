"""Log files that are not syslog: each MTA's own file, framed into the same ``Record``.

Three families write their own files instead of (or as well as) syslog:

* **daemontools ``multilog``** (qmail, vpopmail, tcpserver under supervise):
  ``@4000000069283b5a1c2d3e4f new msg 12345``. The ``@`` stamp is TAI64N: 16
  hex digits of seconds since 1970 plus 2^62 and 10 (daemontools' label, which
  follows the system clock; ``tai64nlocal`` subtracts the same constant) and 8
  hex digits of nanoseconds. The line names no program: every multilog line
  becomes program ``qmail`` and the qmail format tells its writers apart by
  their text (``tcpserver:``, ``rblsmtpd:``, ``new msg``...).
* **Exim's own log files** (``mainlog``, ``rejectlog``, ``paniclog``, cPanel's
  ``exim_mainlog``): ``2026-11-27 17:34:14[.123][ +0100][ [pid]] text``. The
  program is ``exim``, or ``exim/reject`` and ``exim/panic`` for the files so
  named; a ``[pid]`` (``log_selector = +pid``) becomes the record's pid.
* **PHP's ``mail.log``** (the ``mail.log`` ini directive):
  ``[27-Nov-2026 17:34:14 Europe/Berlin] mail() on [/var/www/x.php:12]: To: ...``.
  The zone is PHP's ``date.timezone`` name. PHP 5.3.0 wrote no stamp at all
  (the stamp came with 5.3.x's successors); such lines are placed at the
  file's modification time (the latest they can have been written).

Which family a file belongs to is decided once, from its first non-blank line
(and, for Exim, its name), by ``kind_of``; a file never mixes families.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailwarden.model import Record, Source
from mailwarden.sources.framing import frame_line
from mailwarden.sources.years import YearInference

Framer = Callable[[str, Source, YearInference], Record | None]

SYSLOG = "syslog"
MULTILOG = "multilog"
EXIM = "exim"
PHP_MAIL = "php_mail"

_TAI64_OFFSET = (1 << 62) + 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXIM_STAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3,6})?(?: [+-]\d{4})? ")
_EXIM_NAMES = ("mainlog", "rejectlog", "paniclog", "exim")
_PHP_STAMP = re.compile(rb"\[\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [^\]]{1,64}\] ")


def kind_of(first: bytes, path: str) -> str:
    """The family of a file from its first non-blank line (bytes, not decoded) and its name."""
    if first.startswith(b"@4000") and len(first) >= 25 and first[25:26] in (b" ", b""):
        return MULTILOG
    if _PHP_STAMP.match(first) or first.startswith(b"mail() on ["):
        return PHP_MAIL
    if _EXIM_STAMP.match(first):
        name = os.path.basename(path).lower()
        if any(part in name for part in _EXIM_NAMES):
            return EXIM
        # A Dovecot log_path with a space-separated stamp frames as syslog; Exim's does not.
        text = first.decode("utf-8", "replace")
        if frame_line(text, Source(path, 1), YearInference()) is None:
            return EXIM
    return SYSLOG


def framer_for(kind: str, path: str, reference: datetime | None) -> Framer:
    """The per-line framing function for a file of ``kind`` (see ``kind_of``)."""
    if kind == MULTILOG:
        return frame_multilog
    if kind == EXIM:
        name = os.path.basename(path).lower()
        program = "exim/reject" if "rejectlog" in name else "exim/panic" if "paniclog" in name else "exim"
        return _exim_framer(program)
    if kind == PHP_MAIL:
        return _php_framer(reference or datetime.now(UTC))
    return frame_line


def _remember(clock: YearInference, stamp: str, ts: datetime) -> None:
    if len(clock.cache) >= clock.CACHE_MAX:
        clock.cache.clear()
    clock.cache[stamp] = ts


# --- multilog ------------------------------------------------------------------------


def tai64n(label: str) -> datetime | None:
    """``@4000000069283b5a1c2d3e4f`` -> aware UTC datetime; None for anything else."""
    if len(label) != 25 or label[0] != "@":
        return None
    try:
        seconds = int(label[1:17], 16) - _TAI64_OFFSET
        nanos = int(label[17:25], 16)
    except ValueError:
        return None
    if nanos >= 1_000_000_000 or not 0 <= seconds < 253_402_300_800:  # up to year 9999
        return None
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def frame_multilog(line: str, source: Source, clock: YearInference) -> Record | None:
    ts = tai64n(line[:25])
    if ts is None or line[25:26] not in (" ", ""):
        return None
    return Record(ts, "", "qmail", None, line[26:], source)


# --- Exim ------------------------------------------------------------------------------


def _exim_framer(program: str) -> Framer:
    def frame_exim(line: str, source: Source, clock: YearInference) -> Record | None:
        # "2026-11-27 17:34:14" then optional ".mmm", optional " +hhmm", optional " [pid]"
        if line[4:5] != "-" or line[10:11] != " " or line[19:20] not in (" ", "."):
            return None
        end = 19
        if line[19:20] == ".":
            end = line.find(" ", 20, 28)
            if end < 0:
                return None
        if line[end + 1 : end + 2] in ("+", "-") and line[end + 6 : end + 7] == " ":
            end += 6
        stamp = line[:end]
        ts = clock.cache.get(stamp)
        if ts is None:
            iso = stamp[:19] + stamp[19:].replace(" ", "")  # "...14.123 +0100" -> "...14.123+0100"
            ts = clock.iso(iso)
            if ts is None:
                return None
            _remember(clock, stamp, ts)
        rest = line[end + 1 :]
        pid = None
        if rest[:1] == "[":
            close = rest.find("] ", 1, 13)
            digits = rest[1:close] if close > 0 else ""
            if digits.isascii() and digits.isdigit():
                pid = int(digits)
                rest = rest[close + 2 :]
        return Record(ts, "", program, pid, rest, source)

    return frame_exim


# --- PHP mail.log ----------------------------------------------------------------------

_MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec"
_PHP_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES.split(), 1)}
_ZONES: dict[str, tzinfo | None] = {}


def _zone(name: str) -> tzinfo | None:
    """PHP writes ``e``: an IANA name (``Europe/Berlin``), ``UTC``, or an offset (``+01:00``)."""
    if name in _ZONES:
        return _ZONES[name]
    zone: tzinfo | None
    try:
        offset = name[:1] in "+-"
        zone = datetime.strptime(name.replace(":", ""), "%z").tzinfo if offset else ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError, OSError):
        zone = None
    if len(_ZONES) < 256:
        _ZONES[name] = zone
    return zone


def _php_framer(reference: datetime) -> Framer:
    undated_ts = reference if reference.tzinfo else reference.replace(tzinfo=UTC)

    def frame_php(line: str, source: Source, clock: YearInference) -> Record | None:
        if line.startswith("mail() on ["):
            return Record(undated_ts.astimezone(UTC), "", "php-mail", None, line, source)
        if line[:1] != "[":
            return None
        close = line.find("] ", 21, 90)
        if close < 0:
            return None
        stamp = line[1:close]
        ts = clock.cache.get(stamp)
        if ts is None:
            try:
                day, mon, rest = stamp.split("-", 2)
                year, clock_time, zone_name = rest.split(" ", 2)
                hh, mm, ss = (int(x) for x in clock_time.split(":"))
                wall = datetime(int(year), _PHP_MONTHS[mon], int(day), hh, mm, ss)
            except (KeyError, ValueError):
                return None
            zone = _zone(zone_name)
            if zone is None:
                return None
            ts = wall.replace(tzinfo=zone).astimezone(UTC)
            _remember(clock, stamp, ts)
        return Record(ts, "", "php-mail", None, line[close + 2 :], source)

    return frame_php
