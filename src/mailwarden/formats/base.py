"""What a log format module provides, and helpers every format needs."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from mailwarden.model import Event, Record

# (record, record.message, label) -> events; see Format.route.
Handler = Callable[[Record, str, str], Sequence[Event] | None]


class Format(Protocol):
    """A parser for one program family.

    ``claims(program)`` decides by the syslog program name alone (never by
    trying regexes on the message). ``parse`` returns the events of one record:
    an empty sequence when the line is understood but carries nothing of
    interest, ``None`` when the format does not understand it (counted as
    "unparsed" so that gaps in a parser show up in every run).

    A format may also offer ``route(program) -> (handler, label)``: the
    function ``parse`` would end up in for that program, so that the pipeline
    can resolve it once per program name and call it directly with
    ``(record, record.message, label)``; see ``formats.route_for``.
    """

    name: str

    def claims(self, program: str) -> bool: ...

    def parse(self, record: Record) -> Sequence[Event] | None: ...


# Fast paths of normalise_ip. Bots bring tens of thousands of distinct
# addresses, so the callers' caches miss often, and ``ipaddress`` costs about
# 10 us per IPv6 address (ip_address() first fails as IPv4, with an exception).
#
# * A dotted quad without leading zeros is exactly what ``ipaddress`` accepts
#   as IPv4 (it rejects leading zeros), and its canonical form is the input.
# * Text of hex digits and colons only: the C library's inet_pton/inet_ntop.
#   glibc accepts the same such strings as ``ipaddress`` and compresses the
#   same way (the first longest run of two or more zero groups, lower-case hex),
#   except for IPv4-mapped and -compatible addresses, which it writes with
#   dots; those go to ``ipaddress``. The claim is checked against ``ipaddress``
#   at import (``_inet_agrees``); on a C library that words addresses
#   differently the fast path is simply off.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_HEX_COLON = re.compile(r"[0-9A-Fa-f:]{2,39}")
_CHECKS = (
    "::", "::1", "1::", "1:0:0:2:0:0:0:3", "1:0:0:2:0:0:3:4", "0:0:1:0:0:1:0:0",
    "1:0:2:0:3:0:4:0", "2001:DB8:0:0:8:800:200C:417A", "ff02::0:0:1", "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8", "0:0:0:0:1:0:0:0", "0001:0023:0456:7890:abcd:ef00:0:0", "1::2:0:0:3",
)  # fmt: skip


def _inet(text: str) -> str | None:
    try:
        out = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))
    except (OSError, ValueError):
        return None
    return None if "." in out else out


def _inet_agrees() -> bool:
    try:
        return all(_inet(text) == str(IPv6Address(text)) for text in _CHECKS)
    except (AttributeError, ValueError):  # no inet_pton on this platform
        return False


_FAST_V6 = _inet_agrees()


def address_value(text: str) -> tuple[int, int] | None:
    """``(version, integer)`` of an address in canonical or plain hex form, quickly.

    None means "not one of the forms the fast paths read" (it may still be an
    address, e.g. with an IPv4 tail or a zone id): callers then ask ``ipaddress``.
    """
    if _IPV4.fullmatch(text):
        return 4, int.from_bytes(socket.inet_aton(text), "big")
    if _FAST_V6 and _HEX_COLON.fullmatch(text):
        try:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        except (OSError, ValueError):
            return None
    return None


def normalise_ip(text: str) -> str | None:
    """Return the canonical form of an IP address written by the server, or None.

    Accepts the bracket content of ``name[addr]`` as Postfix writes it,
    including ``IPv6:`` prefixes and zone ids; anything else is not an address.
    The result is always ``str(ipaddress.ip_address(...))``; see the fast paths above.
    """
    if text.startswith(("IPv6:", "ipv6:")):
        text = text[5:]
    text = text.split("%", 1)[0]
    if _IPV4.fullmatch(text):
        return text
    if _FAST_V6 and _HEX_COLON.fullmatch(text):
        fast = _inet(text)
        if fast is not None:
            return fast
    try:
        # ip_address() tries IPv4 first; neither form parses with the other's separator.
        return str(IPv6Address(text) if ":" in text else IPv4Address(text))
    except ValueError:
        return None
