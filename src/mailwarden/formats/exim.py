"""Exim 4 (4.8x to 4.98, Debian exim4 and cPanel) → typed events.

Exim writes its own ``mainlog``, ``rejectlog`` and ``paniclog`` (framed by
``sources.native`` as programs ``exim``, ``exim/reject`` and ``exim/panic``,
stamp and ``[pid]`` already removed) or, with ``log_file_path = syslog``,
syslog lines tagged ``exim`` or ``exim4``. In syslog, Exim's own stamp and
``[pid]`` stay in the message by default (``syslog_timestamp``,
``syslog_pid``), long or multi-line entries are split into ``[n/m]`` parts,
and with the default ``syslog_duplication`` a line meant for both the main
and the reject log is written twice.

Which parser runs is decided from the start of the line: a message id
(``1rAbcD-0001Xy-Ab``, or 4.97's ``1rAbcD-00000001Xy-AbCd``) leads to the
message life-cycle parser (``_exim_message``), everything else to the SMTP
session parser (``_exim_smtp``). The shapes, the mapping to events and the
lines deliberately ignored are in ``docs/formats/exim.md``;
``tests/golden/exim`` is the executable spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from mailwarden.formats._exim_fields import MESSAGE_ID
from mailwarden.formats._exim_message import NOTHING, parse_with_id
from mailwarden.formats._exim_smtp import parse_session
from mailwarden.formats.base import Handler
from mailwarden.model import Event, LocalSubmission, MessageInfo, Record

_PROGRAMS = frozenset({"exim", "exim4"})
_MESSAGE_ID = MESSAGE_ID.match
# After a message id, the forms that are session lines about that message.
_ID_SESSION = ("H=", "F=", "U=", "SMTP connection from ")
# +arguments (cPanel's default) logs the working directory of every exim process,
# among them the one a web script's sendmail call starts: the script's directory.
_CWD_MAX = 1024
_CWD_UNPAIRED_WINDOW = timedelta(seconds=5)


def _main(record: Record, message: str, label: str) -> Sequence[Event] | None:
    """A mainlog line (program ``exim``: Exim's own file, or syslog with the stamp kept)."""
    msg = message
    if msg[4:5] == "-" and msg[10:11] == " " and msg[:4].isdigit():
        stripped = _strip_stamp(msg)
        if stripped is None:
            return None
        msg = stripped
    if msg[:1] == "[":
        msg = _strip_pid(msg)
    if msg[6:7] == "-":
        m = _MESSAGE_ID(msg)
        if m is not None:
            n = m.end()
            if msg.startswith(_ID_SESSION, n + 1):
                # "<id> H=... F=<..> rejected after DATA: ..." (the id is the refused message's),
                # "<id> SMTP connection from ... lost while reading message data"
                return parse_session(record, msg[n + 1 :])
            return parse_with_id(record, msg, n)
    return parse_session(record, msg)


def _strip_stamp(msg: str) -> str | None:
    """Drop ``2026-11-27 17:34:14[.123][ +0100] `` (Exim's stamp inside a syslog message)."""
    if msg[13:14] != ":" or msg[16:17] != ":":
        return msg  # not a stamp after all; let the parsers decide
    end = 19
    if msg[end : end + 1] == ".":
        end += 4
    if msg[end + 1 : end + 2] in ("+", "-") and msg[end + 6 : end + 7] == " ":
        end += 6
    if msg[end : end + 1] != " ":
        return None
    return msg[end + 1 :]


def _strip_pid(msg: str) -> str:
    """``[1234] text`` (``+pid`` kept in syslog) and ``[1/3] text`` (a syslog split)."""
    close = msg.find("] ", 1, 24)
    if close < 0:
        return msg
    inner = msg[1:close]
    if inner.isascii() and inner.isdigit():
        return msg[close + 2 :]
    return msg


class EximFormat:
    """The Exim family: programs ``exim``/``exim4`` (and ``exim/reject``, ``exim/panic``)."""

    name = "exim"

    def __init__(self) -> None:
        # Syslog duplication: the line just seen, so that its reject-log copy is not
        # counted twice. One entry: bounded by construction.
        self._last: tuple[object, int | None, str] | None = None
        # pid (None without +pid) -> (time, directory) of the latest cwd= line not yet paired
        self._cwd: dict[int | None, tuple[datetime, str]] = {}
        self.dropped = 0

    def claims(self, program: str) -> bool:
        return program.partition("/")[0] in _PROGRAMS

    def route(self, program: str) -> tuple[Handler, str] | None:
        if program in _PROGRAMS:
            return self._syslog_or_main, ""
        if program == "exim/reject":
            return _reject, ""
        if program == "exim/panic":
            return _panic, ""
        return None

    def parse(self, record: Record) -> Sequence[Event] | None:
        route = self.route(record.program)
        if route is None:
            return None
        return route[0](record, record.message, route[1])

    def _syslog_or_main(self, record: Record, message: str, label: str) -> Sequence[Event] | None:
        if message[6:7] == "-" and not record.host:
            # The bulk of Exim's own mainlog: a line that starts with a message id (no
            # stamp, pid or split part can start like one; nothing is written twice).
            m = _MESSAGE_ID(message)
            if m is not None:
                n = m.end()
                if message[n + 1 : n + 2] in "HFUS" and message.startswith(_ID_SESSION, n + 1):
                    return parse_session(record, message[n + 1 :])
                found = parse_with_id(record, message, n)
                return self._with_cwd(record, found) if self._cwd and found else found
        events = self._read(record, message, label)
        if events:
            if self._cwd:
                return self._with_cwd(record, events)
        elif events is not None and "cwd=" in message[:40]:
            self._note_cwd(record, message)
        return events

    def _note_cwd(self, record: Record, message: str) -> None:
        """``cwd=/home/site/public_html 3 args: /usr/sbin/sendmail -t -i``: remember the directory.

        Exim's own re-executions (queue runs, deliveries) run in its spool directory and say
        nothing about who submitted mail; those are not kept.
        """
        at = message.find("cwd=")
        end = message.find(" args: ", at)
        if end < 0:
            return
        cwd = message[at + 4 : end].rpartition(" ")[0][:512]
        if not cwd or cwd.startswith("/var/spool/"):
            return
        if record.pid not in self._cwd and len(self._cwd) >= _CWD_MAX:
            del self._cwd[next(iter(self._cwd))]
            self.dropped += 1
        self._cwd[record.pid] = (record.ts, cwd)

    def _with_cwd(self, record: Record, events: Sequence[Event]) -> Sequence[Event]:
        """Name the directory of a local submission's process (the same pid, or without
        +pid the latest cwd= line of the last seconds) as the message's script."""
        for event in events:
            if type(event) is LocalSubmission:
                found = self._cwd.pop(record.pid, None)
                if found is None or record.ts - found[0] > _CWD_UNPAIRED_WINDOW:
                    return events
                info = MessageInfo(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=event.queue_id,
                    script=found[1],
                )
                return [*events, info]
        return events

    def _read(self, record: Record, message: str, label: str) -> Sequence[Event] | None:
        """Every line but the mainlog's message-id lines (handled first, above)."""
        if message[:1] == "[":
            part = _split_part(message)
            if part is not None:
                if part[0] != 1:
                    return NOTHING  # continuation of a split entry (header lines of a reject)
                message = part[1]
        if not record.host:
            return _main(record, message, label)  # Exim's own mainlog: nothing is written twice
        # syslog_duplication: a line for the main and the reject log is sent twice
        # by the same process in the same second; one session's process never
        # writes one line twice otherwise (each carries a new id, address or count).
        key = (record.ts, record.pid, message)
        if key == self._last:
            return NOTHING
        self._last = key
        return _main(record, message, label)


def _split_part(message: str) -> tuple[int, str] | None:
    """``[2\\3] text`` -> ``(2, "text")``: one part of an entry Exim split for syslog."""
    close = message.find("] ", 1, 16)
    if close < 0:
        return None
    inner = message[1:close]
    for sep in ("/", "\\"):
        num, found, total = inner.partition(sep)
        if found and num.isascii() and num.isdigit() and total.isascii() and total.isdigit():
            return int(num), message[close + 2 :]
    return None


def _reject(record: Record, message: str, label: str) -> Sequence[Event] | None:
    """Rejectlog: each stamped line repeats a mainlog line (the header dump has no stamp).

    Understood lines are not emitted again; the mainlog copy is the one counted.
    """
    events = _main(record, message, label)
    return None if events is None else NOTHING


def _panic(record: Record, message: str, label: str) -> Sequence[Event] | None:
    """Paniclog: every entry is also written to the mainlog (LOG_PANIC implies LOG_MAIN)."""
    return NOTHING


__all__ = ["EximFormat"]
