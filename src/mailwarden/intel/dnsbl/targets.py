"""What is looked up, and under which DNS name (RFC 5782). No I/O.

* IPv4: the four octets reversed -- ``203.0.113.7`` → ``7.113.0.203.<zone>``.
* IPv6: the 32 nibbles of the full address reversed, one label each.
* IPv4-mapped IPv6 (``::ffff:203.0.113.7``) is the IPv4 address: that is how
  blocklists see a dual-stack sender.
* Domains: as they are, lower-cased and IDNA-encoded (``bücher.example`` →
  ``xn--bcher-kva.example``), followed by the zone.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.name

from mailwarden.intel.dnsbl.errors import TargetError

TargetKind = Literal["ip4", "ip6", "domain"]

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?")
_MAX_NAME = 253


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """One thing to look up: an address (normalised text) or an ASCII domain name."""

    text: str
    kind: TargetKind
    original: str = ""

    @property
    def display(self) -> str:
        """The form to show: the normalised text, with the user's spelling if it differed."""
        if self.original and self.original != self.text and self.kind == "domain":
            return f"{self.text} ({self.original})"
        return self.text


def parse_target(text: str) -> Target:
    """An IP address or a domain name; raise TargetError otherwise."""
    raw = text.strip()
    if not raw:
        raise TargetError("empty target")
    candidate = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        ip = ipaddress.ip_address(candidate)
    except ValueError:
        pass
    else:
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.scope_id:
                raise TargetError(f"{raw!r}: a scoped (link-local) address cannot be on a blocklist")
            if ip.ipv4_mapped is not None:
                return Target(str(ip.ipv4_mapped), "ip4", raw)
            return Target(ip.compressed, "ip6", raw)
        return Target(str(ip), "ip4", raw)
    return Target(_domain(raw), "domain", raw)


def _domain(raw: str) -> str:
    name = raw.rstrip(".")
    if "/" in name or ":" in name or "@" in name or any(c.isspace() for c in name):
        raise TargetError(f"{raw!r} is neither an IP address nor a domain name")
    try:
        ascii_name = dns.name.from_unicode(name.lower()).to_text(omit_final_dot=True)
    except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel) as exc:
        raise TargetError(f"{raw!r} is not a valid domain name: {exc}") from exc
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise TargetError(f"{raw!r} is not a valid domain name (IDNA: {exc})") from exc
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(lb) for lb in labels):
        raise TargetError(f"{raw!r} is not a valid domain name (need letters, digits, '-', and a dot)")
    if labels[-1].isdigit():
        raise TargetError(f"{raw!r} looks like a malformed IP address")
    return ascii_name


def reversed_labels(target: Target) -> str:
    """The left-hand part of the query name (without the zone)."""
    if target.kind == "ip4":
        return ".".join(reversed(target.text.split(".")))
    if target.kind == "ip6":
        nibbles = ipaddress.IPv6Address(target.text).exploded.replace(":", "")
        return ".".join(reversed(nibbles))
    return target.text


def query_name(target: Target, zone: str) -> str:
    """The absolute DNS name to ask for (with the trailing dot, so no search list applies)."""
    name = f"{reversed_labels(target)}.{zone.rstrip('.')}"
    if len(name) > _MAX_NAME:
        raise TargetError(f"{target.text!r} is too long to look up in {zone} ({len(name)} > 253 characters)")
    return name + "."
