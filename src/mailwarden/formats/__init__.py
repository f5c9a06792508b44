"""Log formats, registered explicitly: adding one is a module plus a line in FORMAT_TYPES.

Some formats keep state between lines of one stream (qmail names a delivery
by number and says which message it belongs to only when it starts;
OpenSMTPD logs the client once per session). A ``FormatSet`` is therefore
made per run, so that no state leaks from one run, file set or test into the
next; the module-level ``format_for``/``route_for`` use a default set for
callers that look at single lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mailwarden.formats.base import Format, Handler
from mailwarden.formats.courier import CourierFormat
from mailwarden.formats.dovecot import DovecotFormat
from mailwarden.formats.exim import EximFormat
from mailwarden.formats.opensmtpd import OpenSmtpdFormat
from mailwarden.formats.php_mail import PhpMailFormat
from mailwarden.formats.plesk import PleskFormat
from mailwarden.formats.postfix import PostfixFormat
from mailwarden.formats.qmail import QmailFormat
from mailwarden.formats.saslauthd import SaslauthdFormat
from mailwarden.formats.sendmail import SendmailFormat
from mailwarden.model import Event, Record

# Order matters only where two families could claim one name: Plesk's
# ``qmail-queue-handlers`` must be seen before qmail's ``qmail-*``.
FORMAT_TYPES: tuple[Callable[[], Format], ...] = (
    PostfixFormat,
    DovecotFormat,
    PleskFormat,
    QmailFormat,
    CourierFormat,
    EximFormat,
    SendmailFormat,
    SaslauthdFormat,
    OpenSmtpdFormat,
    PhpMailFormat,
)

__all__ = ["FORMATS", "FORMAT_TYPES", "Format", "FormatSet", "Handler", "format_for", "route_for"]

_CACHE_MAX = 4096


class FormatSet:
    """One instance of every format, with the program-name lookups cached (bounded)."""

    def __init__(self) -> None:
        self.formats: tuple[Format, ...] = tuple(make() for make in FORMAT_TYPES)
        self._cache: dict[str, Format | None] = {}

    def format_for(self, program: str) -> Format | None:
        """The format that claims ``program``; cached because program names repeat endlessly."""
        try:
            return self._cache[program]
        except KeyError:
            pass
        found = next((f for f in self.formats if f.claims(program)), None)
        if len(self._cache) < _CACHE_MAX:
            self._cache[program] = found
        return found

    def route_for(self, program: str) -> tuple[Handler, str, str] | None:
        """``(handler, label, format name)`` for ``program``; None when no format claims it.

        ``handler(record, record.message, label)`` returns exactly what
        ``format_for(program).parse(record)`` returns, one call shorter: the
        pipeline resolves this once per program name instead of dispatching on
        every record.
        """
        fmt = self.format_for(program)
        if fmt is None:
            return None
        route = getattr(fmt, "route", None)
        if route is None:
            return _via_parse(fmt), "", fmt.name
        found: tuple[Handler, str] | None = route(program)
        if found is None:
            return _unparsed, "", fmt.name
        return found[0], found[1], fmt.name


_DEFAULT = FormatSet()
FORMATS: tuple[Format, ...] = _DEFAULT.formats


def format_for(program: str) -> Format | None:
    return _DEFAULT.format_for(program)


def route_for(program: str) -> tuple[Handler, str, str] | None:
    return _DEFAULT.route_for(program)


def _via_parse(fmt: Format) -> Handler:
    def handler(record: Record, message: str, label: str) -> Sequence[Event] | None:
        return fmt.parse(record)

    return handler


def _unparsed(record: Record, message: str, label: str) -> Sequence[Event] | None:
    """A program the format claims but has no parser for: every line is unparsed."""
    return None
