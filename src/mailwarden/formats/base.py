"""What a log format module provides, and helpers every format needs."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol

from mailwarden.model import Event, Record


class Format(Protocol):
    """A parser for one program family.

    ``claims(program)`` decides by the syslog program name alone (never by
    trying regexes on the message). ``parse`` returns the events of one record:
    an empty sequence when the line is understood but carries nothing of
    interest, ``None`` when the format does not understand it (counted as
    "unparsed" so that gaps in a parser show up in every run).
    """

    name: str

    def claims(self, program: str) -> bool: ...

    def parse(self, record: Record) -> Sequence[Event] | None: ...


def normalise_ip(text: str) -> str | None:
    """Return the canonical form of an IP address written by the server, or None.

    Accepts the bracket content of ``name[addr]`` as Postfix writes it,
    including ``IPv6:`` prefixes and zone ids; anything else is not an address.
    """
    if text.startswith(("IPv6:", "ipv6:")):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None
