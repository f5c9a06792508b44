"""Results of a blocklist check: immutable values, no I/O.

Three outcomes per (target, list), and only one of them is a listing:

* ``listed``      -- the list answered with a documented listing code;
* ``not_listed``  -- NXDOMAIN (or an empty answer);
* ``unknown``     -- anything else: timeout, SERVFAIL/REFUSED, an error code, a
  refusal of our resolver, an answer outside 127.0.0.0/8, an undocumented code.

``unknown`` is never counted as listed, and never as clean either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mailwarden.intel.dnsbl.targets import Target
from mailwarden.intel.dnsbl.zones import CodeInfo, ZoneInfo

JSON_SCHEMA = "mailwarden.dnsbl.check/1"


class Status(StrEnum):
    LISTED = "listed"
    NOT_LISTED = "not_listed"
    UNKNOWN = "unknown"


class Problem(StrEnum):
    """Why a result is ``unknown``."""

    TIMEOUT = "timeout"  # no answer within the per-query timeout
    DEADLINE = "deadline"  # the whole check's deadline came first
    SERVFAIL = "servfail"
    REFUSED = "refused"  # the resolver answered REFUSED
    DNS_ERROR = "dns_error"  # another rcode, or a network error
    ERROR_CODE = "error_code"  # the list answered with a documented error code
    RESOLVER_BLOCKED = "resolver_blocked"  # the list refuses our resolver (public/open resolver)
    RATE_LIMITED = "rate_limited"  # the list says our resolver asks too much
    OUTSIDE_127 = "answer_outside_127"  # a rewritten/bogus answer: not a DNSBL reply
    UNDOCUMENTED_CODE = "undocumented_code"


RESOLVER_PROBLEMS = frozenset({Problem.RESOLVER_BLOCKED, Problem.RATE_LIMITED})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one A answer means for one list (see ``answers.interpret``)."""

    status: Status
    codes: tuple[CodeInfo, ...] = ()
    problem: Problem | None = None
    detail: str = ""
    severity: int = 0


@dataclass(frozen=True, slots=True)
class ZoneResult:
    """The outcome for one target on one list."""

    target: Target
    zone: ZoneInfo
    qname: str
    status: Status
    answers: tuple[str, ...] = ()
    codes: tuple[CodeInfo, ...] = ()
    txt: tuple[str, ...] = ()
    problem: Problem | None = None
    detail: str = ""
    severity: int = 0
    elapsed: float = 0.0

    @property
    def delisting(self) -> str:
        """The steps to get off: code-specific ones first, then the list's general advice."""
        steps = [c.delisting for c in self.codes if c.delisting]
        if self.zone.delisting:
            steps.append(self.zone.delisting)
        return " ".join(dict.fromkeys(steps))

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target.text,
            "target_kind": self.target.kind,
            "list": self.zone.name,
            "list_title": self.zone.label,
            "zone": self.zone.zone,
            "qname": self.qname,
            "status": self.status.value,
            "severity": self.severity,
            "answers": list(self.answers),
            "codes": [{"code": c.address, "meaning": c.meaning} for c in self.codes],
            "txt": list(self.txt),
            "problem": self.problem.value if self.problem else None,
            "detail": self.detail,
            "lookup_url": self.zone.lookup_url(self.target.text),
            "delisting": self.delisting if self.status is Status.LISTED else None,
            "elapsed_ms": round(self.elapsed * 1000, 1),
        }


@dataclass(frozen=True, slots=True)
class CheckReport:
    """A whole check: every (target, list) result, sorted worst first."""

    started: datetime
    elapsed: float
    resolver: str
    targets: tuple[Target, ...]
    zones: tuple[ZoneInfo, ...]
    results: tuple[ZoneResult, ...]
    warnings: tuple[str, ...] = ()

    @property
    def listed(self) -> tuple[ZoneResult, ...]:
        return tuple(r for r in self.results if r.status is Status.LISTED)

    @property
    def unknown(self) -> tuple[ZoneResult, ...]:
        return tuple(r for r in self.results if r.status is Status.UNKNOWN)

    @property
    def not_listed(self) -> tuple[ZoneResult, ...]:
        return tuple(r for r in self.results if r.status is Status.NOT_LISTED)

    @property
    def answered(self) -> int:
        """How many lookups gave a usable answer (listed or not listed)."""
        return len(self.results) - len(self.unknown)

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": JSON_SCHEMA,
            "started": self.started.isoformat(),
            "elapsed_ms": round(self.elapsed * 1000, 1),
            "resolver": self.resolver,
            "targets": [{"target": t.text, "kind": t.kind} for t in self.targets],
            "lists": [z.name for z in self.zones],
            "summary": {
                "lookups": len(self.results),
                "listed": len(self.listed),
                "not_listed": len(self.not_listed),
                "unknown": len(self.unknown),
            },
            "warnings": list(self.warnings),
            "results": [r.to_dict() for r in self.results],
        }


def sort_key(r: ZoneResult) -> tuple[int, int, str, str]:
    """Listed first (worst first), then unknown, then clean; stable by target and list."""
    rank = {Status.LISTED: 0, Status.UNKNOWN: 1, Status.NOT_LISTED: 2}[r.status]
    return (rank, -r.severity if r.status is Status.LISTED else -r.zone.severity, r.target.text, r.zone.name)
