"""Log formats, registered explicitly: adding one is a module plus a line in FORMATS."""

from __future__ import annotations

from mailwarden.formats.base import Format
from mailwarden.formats.dovecot import DovecotFormat
from mailwarden.formats.postfix import PostfixFormat

FORMATS: tuple[Format, ...] = (PostfixFormat(), DovecotFormat())

__all__ = ["FORMATS", "Format", "format_for"]

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
