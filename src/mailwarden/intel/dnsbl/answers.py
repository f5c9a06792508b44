"""Reading a blocklist's answer. No I/O: the engine hands in what DNS said.

The rules, in order (docs/dnsbl.md "How answers are read"):

1. NXDOMAIN → not listed; NOERROR without an A record → not listed.
2. Timeout, SERVFAIL, REFUSED, other errors → unknown.
3. Any answer outside 127.0.0.0/8 → unknown: a DNSBL only answers in 127/8, so
   the resolver rewrote the reply (NXDOMAIN redirection, a filtering resolver)
   or the zone is not a blocklist. Everything else in that answer is suspect.
4. Any documented error answer (Spamhaus 127.255.255.254, URIBL 127.0.0.1, ...)
   → unknown, with the reason: the list refused *us*, it said nothing about the
   target.
5. Documented codes → listed, with their meanings. For bitmask lists (SURBL,
   URIBL) each set bit of the last octet is one sub-list.
6. A code the list does not document → unknown (never guessed to be a listing).
   Ad-hoc zones (``--zone``) document nothing, so they follow RFC 5782: any
   127/8 answer is a listing except 127.0.0.1 and the 127.255.255.0/24 error
   range used by Spamhaus.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mailwarden.intel.dnsbl.model import Problem, Status, Verdict
from mailwarden.intel.dnsbl.zones import CodeInfo, ErrorCode, ZoneInfo

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_ERROR_RANGE = ipaddress.ip_network("127.255.255.0/24")
_ERROR_RANK = {"resolver_blocked": 0, "rate_limited": 1, "error": 2}
_ERROR_PROBLEM = {
    "resolver_blocked": Problem.RESOLVER_BLOCKED,
    "rate_limited": Problem.RATE_LIMITED,
    "error": Problem.ERROR_CODE,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the DNS lookup of the A record produced, before any interpretation."""

    kind: Literal["answer", "nxdomain", "nodata", "failure"]
    addresses: tuple[str, ...] = ()
    problem: Problem | None = None
    detail: str = ""


def interpret(zone: ZoneInfo, outcome: Outcome) -> Verdict:
    """The verdict for one list given one lookup outcome (rules in the module docstring)."""
    if outcome.kind == "nxdomain":
        return Verdict(Status.NOT_LISTED, detail="NXDOMAIN")
    if outcome.kind == "nodata":
        return Verdict(Status.NOT_LISTED, detail="no A record")
    if outcome.kind == "failure":
        return Verdict(Status.UNKNOWN, problem=outcome.problem or Problem.DNS_ERROR, detail=outcome.detail)
    return _answer(zone, outcome.addresses)


def _answer(zone: ZoneInfo, addresses: Sequence[str]) -> Verdict:
    if not addresses:
        return Verdict(Status.NOT_LISTED, detail="no A record")
    outside = [a for a in addresses if not _in_loopback(a)]
    if outside:
        return Verdict(
            Status.UNKNOWN,
            problem=Problem.OUTSIDE_127,
            detail=(
                f"answer {', '.join(outside)} is outside 127.0.0.0/8: not a blocklist reply -- the resolver "
                "rewrites answers (NXDOMAIN redirection, filtering) or the zone is not a DNSBL"
            ),
        )
    errors = [e for e in (zone.error(a) for a in addresses) if e is not None]
    if errors:
        return _error(zone, errors)
    if zone.adhoc:
        return _adhoc(zone, addresses)
    codes, undocumented = _codes(zone, addresses)
    if codes:
        detail = f"also undocumented code(s) {', '.join(undocumented)}" if undocumented else ""
        return Verdict(Status.LISTED, codes=codes, detail=detail, severity=_severity(zone, codes))
    where = f"; see {zone.docs}" if zone.docs else ""
    return Verdict(
        Status.UNKNOWN,
        problem=Problem.UNDOCUMENTED_CODE,
        detail=f"{zone.label} answered {', '.join(undocumented)}, which it does not document{where}",
    )


def _error(zone: ZoneInfo, errors: Sequence[ErrorCode]) -> Verdict:
    worst = min(errors, key=lambda e: _ERROR_RANK[e.kind])
    problem = _ERROR_PROBLEM[worst.kind]
    if problem is Problem.ERROR_CODE:
        prefix = f"{zone.label} answered with an error code"
    else:
        prefix = f"{zone.label} refused to answer this resolver"
    return Verdict(Status.UNKNOWN, problem=problem, detail=f"{prefix} ({worst.address}): {worst.meaning}")


def _adhoc(zone: ZoneInfo, addresses: Sequence[str]) -> Verdict:
    bad = [a for a in addresses if a == "127.0.0.1" or ipaddress.ip_address(a) in _ERROR_RANGE]
    if bad:
        return Verdict(
            Status.UNKNOWN,
            problem=Problem.ERROR_CODE,
            detail=(
                f"{zone.zone} answered {', '.join(bad)}: by convention an error or 'query refused', "
                "never a listing"
            ),
        )
    codes = tuple(
        CodeInfo(a, "listed (ad-hoc zone: the meaning of this code is not known)") for a in addresses
    )
    return Verdict(Status.LISTED, codes=codes, severity=zone.severity)


def _codes(zone: ZoneInfo, addresses: Sequence[str]) -> tuple[tuple[CodeInfo, ...], list[str]]:
    found: list[CodeInfo] = []
    undocumented: list[str] = []
    for a in dict.fromkeys(addresses):
        if zone.match == "bitmask":
            last = int(a.rsplit(".", 1)[1])
            bits = [1 << i for i in range(8) if last & (1 << i)]
            for bit in bits:
                code = zone.code(f"127.0.0.{bit}")
                if code is None:
                    undocumented.append(f"{a} (bit {bit})")
                elif code not in found:
                    found.append(code)
            if not bits:
                undocumented.append(a)
            continue
        code = zone.code(a)
        if code is None:
            undocumented.append(a)
        elif code not in found:
            found.append(code)
    return tuple(found), undocumented


def _severity(zone: ZoneInfo, codes: Sequence[CodeInfo]) -> int:
    return max(zone.severity if c.severity is None else c.severity for c in codes)


def _in_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and ip in _LOOPBACK


def decode_txt(strings: Sequence[bytes]) -> str:
    """One TXT record's character-strings joined and decoded leniently (it is list-written text).

    The result still holds control characters: it must go through
    ``report.safe.clean`` before reaching a terminal.
    """
    return b"".join(strings).decode("utf-8", "replace")
