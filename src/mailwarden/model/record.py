"""The framed log line: what every source produces and every format consumes.

A record is cut from one physical line before any format-specific parsing, so
that the formats never see transport details (compression, journald JSON,
syslog framing) and the sources never need to know about mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class Source:
    """Where a record came from: enough for an operator to open the raw line."""

    file: str
    line: int

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line}


@dataclass(slots=True)
class Record:
    """One log line split into its syslog parts.

    ``program`` is the syslog tag without the pid (``postfix/smtpd``,
    ``postfix/submission/smtpd``, ``dovecot``, ``imap-login``); ``message`` is
    everything after ``program[pid]: ``. ``ts`` is always timezone-aware.
    """

    ts: datetime
    host: str
    program: str
    pid: int | None
    message: str
    source: Source
