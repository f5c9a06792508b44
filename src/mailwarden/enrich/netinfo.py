"""The answer to "where is this address": one immutable value per address.

Detectors count *countries* and *networks* per account, so both fields are
normalised here once (upper-case ISO code or ``None``; a CIDR string) and
every consumer can compare them with ``==`` without knowing which database
answered.
"""

from __future__ import annotations

from dataclasses import dataclass

SCOPES: tuple[str, ...] = (
    "public",
    "private",
    "loopback",
    "link_local",
    "documentation",
    "reserved",
    "invalid",
)
"""Every value ``NetInfo.scope`` can take; ``private`` includes CGNAT and ULA."""


class GeoError(Exception):
    """A user-supplied GeoIP database cannot be read or is not a MaxMind DB."""


@dataclass(frozen=True, slots=True)
class NetInfo:
    """Country and network of one address, with the database that said so.

    ``ip`` is the normalised form that was looked up: an IPv4-mapped IPv6
    address comes back as its IPv4 form, so the same client counts once
    whether the server logged it as ``::ffff:a.b.c.d`` or ``a.b.c.d``.
    For an invalid input it is the input itself (cut to 64 characters).

    ``network`` is the AS block when a database knows it, otherwise the
    covering /24 (IPv4) or /48 (IPv6), so "distinct networks" is countable
    for every valid address, including private ones.

    ``source`` names what filled the fields, joined by ``+`` (``mmdb``,
    ``iptocc``, ``geoip2fast``); ``scope`` when only the address range
    classified it; ``none`` for a public address nobody knew.
    """

    ip: str
    scope: str
    country: str | None
    asn: int | None
    org: str | None
    network: str | None
    source: str

    def label(self) -> str:
        """Short text for tables: country and organisation if known, else the scope."""
        parts = [p for p in (self.country, self.org) if p]
        if parts:
            return " ".join(parts)
        if self.scope == "public":
            return "unknown"
        return self.scope

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict with stable keys, for the JSON and HTML reports."""
        return {
            "ip": self.ip,
            "scope": self.scope,
            "country": self.country,
            "asn": self.asn,
            "org": self.org,
            "network": self.network,
            "source": self.source,
        }


_UNKNOWN_CODES = frozenset({"ZZ", "XX", "--"})


def normalise_country(value: object) -> str | None:
    """Upper-case ISO alpha-2 code, or ``None`` for anything else.

    Databases spell "unknown" in several ways (``ZZ``, ``XX``, ``--``, empty);
    treating those as a country would make every unknown address look like
    one more country to the cracked-account detector.
    """
    if not isinstance(value, str) or len(value) != 2 or not value.isascii():
        return None
    code = value.upper()
    if not code.isalpha() or code in _UNKNOWN_CODES:
        return None
    return code
