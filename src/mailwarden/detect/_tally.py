"""Counting failed logins without counting one attempt twice.

One failed IMAP login is often written twice: by the login process
(``imap-login: Disconnected (auth failed, 1 attempts)``) and by the password
back end (``auth: passwd-file(...): Password mismatch``); an SMTP AUTH
failure by Postfix and by Dovecot's auth process. Which of the two a server
logs depends on its configuration (``auth_verbose``), so the tally counts
each layer on its own and reports the larger count, never the sum.

Hot path: four detectors add every failed login to a tally, so ``add`` is
kept to a handful of operations. The two per-layer window sums share one
deque of ``(ts, frontend, backend)`` rows: that is exactly two sliding sums
fed the same times (a failure adds zero to the other layer), with one append
and one prune instead of two. Evidence is kept as the failure events
themselves and worded only when a report asks (``evidence``): most tallies
never become a finding, and wording each line cost more than counting it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailwarden.detect.base import MAX_EVIDENCE, add_evidence
from mailwarden.model import AuthFailed, AuthSucceeded
from mailwarden.model.findings import Evidence

MAX_NAMES = 200
MAX_CRACKED = 100


def failure_evidence(event: AuthFailed) -> Evidence:
    """The evidence line of one failed login, as every credential finding words it."""
    who = f" as {event.user}" if event.user else ""
    return Evidence(
        ts=event.ts,
        what=f"failed login{who} from {event.client} ({event.service})",
        source=event.source,
    )


@dataclass(slots=True)
class FailureTally:
    """Failures of one subject (an address or an account) in a window and in total."""

    window: timedelta
    total_frontend: int = 0
    total_backend: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    flagged_at: datetime | None = None
    names: dict[str, int] = field(default_factory=dict)
    failed: list[AuthFailed] = field(default_factory=list)
    successes: list[Evidence] = field(default_factory=list)
    cracked: dict[str, None] = field(default_factory=dict)
    # (ts, frontend attempts, backend attempts) inside the window, and their sums
    _rows: deque[tuple[datetime, int, int]] = field(default_factory=deque)
    _frontend: int = 0
    _backend: int = 0

    def succeeded(self, event: AuthSucceeded) -> None:
        """A successful login from the attacking subject: the guess may have worked."""
        if event.user not in self.cracked and len(self.cracked) < MAX_CRACKED:
            self.cracked[event.user] = None
        add_evidence(self.successes, event.ts, f"then logged in as {event.user}", event.source)

    def add(self, event: AuthFailed, name: str) -> int:
        """Count one failure line; return the failures now inside the window."""
        attempts = event.attempts
        if not 1 <= attempts <= 1000:
            attempts = max(1, min(attempts, 1000))
        ts = event.ts
        rows = self._rows
        if event.layer == "backend":
            rows.append((ts, 0, attempts))
            self._backend += attempts
            self.total_backend += attempts
        else:
            rows.append((ts, attempts, 0))
            self._frontend += attempts
            self.total_frontend += attempts
        limit = ts - self.window
        if rows[0][0] < limit:
            self._prune(limit)
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        names = self.names
        if name and (name in names or len(names) < MAX_NAMES):
            names[name] = names.get(name, 0) + attempts
        if len(self.failed) < MAX_EVIDENCE and event.source is not None:
            self.failed.append(event)
        front, back = self._frontend, self._backend
        return front if front >= back else back

    def _prune(self, limit: datetime) -> None:
        rows = self._rows
        while rows and rows[0][0] < limit:
            _, front, back = rows.popleft()
            self._frontend -= front
            self._backend -= back

    @property
    def evidence(self) -> list[Evidence]:
        """The first failures as evidence lines (a new list on each call)."""
        return [failure_evidence(event) for event in self.failed]

    def in_window(self) -> int:
        return max(self._frontend, self._backend)

    def idle_since(self, limit: datetime) -> bool:
        """Never flagged and quiet since before ``limit``: it can no longer become a finding."""
        return self.flagged_at is None and self.last_ts is not None and self.last_ts < limit

    @property
    def total(self) -> int:
        return max(self.total_frontend, self.total_backend)
