"""Findings: what the detectors conclude, with pointers back to the raw lines.

An ``Incident`` is the unit an operator acts on. Its fields are the public
JSON contract of ``mailwarden triage --format json`` (see
``docs/json-schema.md``); renaming one is a breaking change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailwarden.model.record import Source

KINDS = (
    "compromised_account",
    "brute_force",
    "distributed_attack",
    "password_spray",
    "unauthenticated_injection",
    "web_script",
    "open_relay",
)
PATHS = ("smtp_auth", "unauthenticated_smtp", "local_submission")
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One raw line that supports a finding, with a few words on why it matters."""

    ts: datetime
    what: str
    source: Source

    def to_dict(self) -> dict[str, object]:
        return {
            "ts": self.ts.isoformat(),
            "what": self.what,
            "file": self.source.file,
            "line": self.source.line,
        }


@dataclass(slots=True)
class Incident:
    """A finding with everything the report, the JSON output and later the responders need."""

    kind: str
    subject: dict[str, object]
    path: str
    severity: str
    first_seen: datetime
    last_seen: datetime
    summary: str
    countries: list[str] = field(default_factory=list)
    messages: int = 0
    recipients: int = 0
    bounced: int = 0
    deferred: int = 0
    failed_logins: int = 0
    addresses: list[dict[str, object]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    timeline: list[Evidence] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    queued_ids: list[str] = field(default_factory=list)
    recommended_actions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "subject": dict(self.subject),
            "path": self.path,
            "severity": self.severity,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "summary": self.summary,
            "countries": list(self.countries),
            "messages": self.messages,
            "recipients": self.recipients,
            "bounced": self.bounced,
            "deferred": self.deferred,
            "failed_logins": self.failed_logins,
            "addresses": list(self.addresses),
            "reasons": list(self.reasons),
            "timeline": [e.to_dict() for e in self.timeline],
            "evidence": [e.to_dict() for e in self.evidence],
            "queued_ids": list(self.queued_ids),
            "recommended_actions": list(self.recommended_actions),
        }


SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}
