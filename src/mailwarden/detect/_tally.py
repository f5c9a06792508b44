"""Counting failed logins without counting one attempt twice.

One failed IMAP login is often written twice: by the login process
(``imap-login: Disconnected (auth failed, 1 attempts)``) and by the password
back end (``auth: passwd-file(...): Password mismatch``); an SMTP AUTH
failure by Postfix and by Dovecot's auth process. Which of the two a server
logs depends on its configuration (``auth_verbose``), so the tally counts
each layer on its own and reports the larger count, never the sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailwarden.detect.base import SlidingSum, add_evidence
from mailwarden.model import AuthFailed
from mailwarden.model.findings import Evidence

MAX_NAMES = 200


@dataclass(slots=True)
class FailureTally:
    """Failures of one subject (an address or an account) in a window and in total."""

    window: timedelta
    frontend: SlidingSum = field(init=False)
    backend: SlidingSum = field(init=False)
    total_frontend: int = 0
    total_backend: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    flagged_at: datetime | None = None
    window_start: datetime | None = None
    names: dict[str, int] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)
    evidence: list[Evidence] = field(default_factory=list)
    successes: list[Evidence] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frontend = SlidingSum(self.window)
        self.backend = SlidingSum(self.window)

    def add(self, event: AuthFailed, name: str) -> int:
        """Count one failure line; return the failures now inside the window."""
        attempts = max(1, min(event.attempts, 1000))
        if event.layer == "backend":
            self.backend.add(event.ts, attempts)
            self.total_backend += attempts
            self.frontend.add(event.ts, 0)
        else:
            self.frontend.add(event.ts, attempts)
            self.total_frontend += attempts
            self.backend.add(event.ts, 0)
            self.services.add(event.service)
        if self.first_ts is None:
            self.first_ts = event.ts
        self.last_ts = event.ts
        if name and (name in self.names or len(self.names) < MAX_NAMES):
            self.names[name] = self.names.get(name, 0) + attempts
        who = f" as {event.user}" if event.user else ""
        add_evidence(
            self.evidence,
            event.ts,
            f"failed login{who} from {event.client} ({event.service})",
            event.source,
        )
        return self.in_window()

    def in_window(self) -> int:
        return max(self.frontend.total, self.backend.total)

    def window_oldest(self) -> datetime | None:
        olds = [t for t in (self.frontend.oldest(), self.backend.oldest()) if t is not None]
        return min(olds) if olds else None

    @property
    def total(self) -> int:
        return max(self.total_frontend, self.total_backend)
