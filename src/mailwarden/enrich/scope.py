"""Which kind of range an address is in, from an explicit table.

The table is ours rather than ``ipaddress``'s ``is_private``/``is_global``
because those changed meaning between Python patch releases (3.11.10,
3.12.4: CGNAT, 192.0.0.0/24 exceptions, ...); a report must not change with
the interpreter. Sources: the IANA IPv4 and IPv6 Special-Purpose Address
Registries (RFC 6890 and successors); CGNAT (RFC 6598) is called ``private``
because for a mail server it is "some customer behind a carrier NAT", never
a place in the world.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address

MAX_INPUT_LEN = 64
"""Longest string we try to parse: an IPv6 address with a zone id fits; a
megabyte of garbage is rejected without work and without being cached."""

_V4_TABLE: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "reserved"),  # "this network"
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "private"),  # CGNAT, RFC 6598
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link_local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),  # TEST-NET-1
    ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),  # benchmarking, RFC 2544
    ("198.51.100.0/24", "documentation"),  # TEST-NET-2
    ("203.0.113.0/24", "documentation"),  # TEST-NET-3
    ("224.0.0.0/4", "reserved"),  # multicast
    ("240.0.0.0/4", "reserved"),  # future use + limited broadcast
)

_V6_TABLE: tuple[tuple[str, str], ...] = (
    ("::/128", "reserved"),  # unspecified
    ("::1/128", "loopback"),
    ("64:ff9b::/96", "reserved"),  # NAT64 well-known prefix
    ("64:ff9b:1::/48", "reserved"),  # local-use NAT64
    ("100::/64", "reserved"),  # discard-only
    ("2001::/23", "reserved"),  # IETF protocol assignments (Teredo, ORCHID, ...)
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),  # RFC 9637
    ("fc00::/7", "private"),  # unique local (ULA)
    ("fe80::/10", "link_local"),
    ("fec0::/10", "private"),  # deprecated site-local: the old "private"
    ("ff00::/8", "reserved"),  # multicast
)

_GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")


def _ranges(table: tuple[tuple[str, str], ...]) -> tuple[tuple[int, int, str], ...]:
    nets = ((ipaddress.ip_network(cidr), scope) for cidr, scope in table)
    return tuple((int(n.network_address), int(n.broadcast_address), s) for n, s in nets)


_V4_RANGES = _ranges(_V4_TABLE)
_V6_RANGES = _ranges(_V6_TABLE)
_GU_LO = int(_GLOBAL_UNICAST_V6.network_address)
_GU_HI = int(_GLOBAL_UNICAST_V6.broadcast_address)


def parse(text: str) -> Address | None:
    """The address in ``text``, with IPv4-mapped IPv6 unwrapped to IPv4; ``None`` if invalid.

    Unwrapping matters because dual-stack servers log the same IPv4 client as
    ``::ffff:a.b.c.d``; looked up as IPv6 it would land in no database.
    """
    if not isinstance(text, str) or len(text) > MAX_INPUT_LEN:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def classify(addr: Address) -> str:
    """One of ``netinfo.SCOPES`` (never ``invalid``) for a parsed, unwrapped address."""
    value = int(addr)
    ranges = _V4_RANGES if addr.version == 4 else _V6_RANGES
    for lo, hi, scope in ranges:
        if lo <= value <= hi:
            return scope
    if addr.version == 6 and not _GU_LO <= value <= _GU_HI:
        return "reserved"  # IANA has allocated only 2000::/3 for global unicast
    return "public"


def fallback_network(addr: Address) -> str:
    """The /24 (IPv4) or /48 (IPv6) around ``addr``.

    A /24 or /48 is the smallest block commonly routed on its own, so two
    addresses in it are "the same network" even when no database knows the AS.
    """
    if isinstance(addr, IPv4Address):
        return str(IPv4Network((int(addr) & 0xFFFFFF00, 24)))
    return str(IPv6Network((int(addr) >> 80 << 80, 48)))


def network_of(addr: Address, prefix_len: int) -> str | None:
    """``addr``'s network for a prefix length a database returned, ``None`` if nonsensical."""
    try:
        if isinstance(addr, IPv4Address):
            return str(IPv4Network((int(addr), prefix_len), strict=False))
        return str(IPv6Network((int(addr), prefix_len), strict=False))
    except (ValueError, TypeError):
        return None
