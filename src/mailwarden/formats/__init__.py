"""Log formats, registered explicitly: adding one is a module plus a line in FORMATS."""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats.base import Format, Handler
from mailwarden.formats.dovecot import DovecotFormat
from mailwarden.formats.postfix import PostfixFormat
from mailwarden.model import Event, Record

FORMATS: tuple[Format, ...] = (PostfixFormat(), DovecotFormat())

__all__ = ["FORMATS", "Format", "Handler", "format_for", "route_for"]

_cache: dict[str, Format | None] = {}
_CACHE_MAX = 4096


def format_for(program: str) -> Format | None:
    """The format that claims ``program``; cached because program names repeat endlessly."""
    try:
        return _cache[program]
    except KeyError:
        pass
    found = next((f for f in FORMATS if f.claims(program)), None)
    if len(_cache) < _CACHE_MAX:
        _cache[program] = found
    return found


def route_for(program: str) -> tuple[Handler, str, str] | None:
    """``(handler, label, format name)`` for ``program``; None when no format claims it.

    ``handler(record, record.message, label)`` returns exactly what
    ``format_for(program).parse(record)`` returns, one call shorter: the
    pipeline resolves this once per program name instead of dispatching on
    every record.
    """
    fmt = format_for(program)
    if fmt is None:
        return None
    route = getattr(fmt, "route", None)
    if route is None:
        return _via_parse(fmt), "", fmt.name
    found: tuple[Handler, str] | None = route(program)
    if found is None:
        return _unparsed, "", fmt.name
    return found[0], found[1], fmt.name


def _via_parse(fmt: Format) -> Handler:
    def handler(record: Record, message: str, label: str) -> Sequence[Event] | None:
        return fmt.parse(record)

    return handler


def _unparsed(record: Record, message: str, label: str) -> Sequence[Event] | None:
    """A program the format claims but has no parser for: every line is unparsed."""
    return None
