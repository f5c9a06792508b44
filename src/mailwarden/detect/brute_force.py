"""Brute force: one address failing many logins.

False positives: a client with a stale password in a phone or a printer keeps
failing from the company's address (allowlist it, or raise ``max_failures``);
a webmail or proxy that logs in on behalf of users from 127.0.0.1 (local
addresses are ignored by default). See docs/detectors/brute_force.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from mailwarden.correlate.messages import MessageState
from mailwarden.detect._tally import FailureTally
from mailwarden.detect.base import BoundedDict, DetectContext, span
from mailwarden.detect.playbook import actions_for
from mailwarden.model import AuthFailed, AuthSucceeded, Event
from mailwarden.model.findings import Incident


@dataclass(frozen=True, slots=True)
class Params:
    """``max_failures`` failed attempts from one address within ``window`` make an incident."""

    max_failures: int = 10
    window: timedelta = timedelta(hours=1)
    ignore_local: bool = True
    max_tracked: int = 100_000


class BruteForce:
    name = "brute_force"
    wants: tuple[type[Event], ...] = (AuthFailed, AuthSucceeded)

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        self.ctx = ctx
        self.p = params or Params()
        self.by_ip: BoundedDict[str, FailureTally] = BoundedDict(
            self.p.max_tracked,
            partial(FailureTally, self.p.window),
            partial(ctx.note_dropped, self.name),
        )

    def feed(self, event: Event, msg: MessageState | None) -> None:
        if isinstance(event, AuthFailed):
            ip = event.client
            if ip is None or (self.p.ignore_local and self.ctx.is_local(ip)):
                return
            tally = self.by_ip.touch(ip)
            if tally.add(event, event.user) >= self.p.max_failures and tally.flagged_at is None:
                tally.flagged_at = event.ts
        elif isinstance(event, AuthSucceeded) and event.client is not None:
            found = self.by_ip.get(event.client)
            if found is not None and found.flagged_at is not None:
                found.succeeded(event)

    def expire(self, now: datetime) -> None:
        limit = now - self.p.window
        self.by_ip.drop_if(lambda t: t.idle_since(limit))

    def message_done(self, msg: MessageState) -> None:
        """Credential attacks do not look at messages."""

    def finish(self) -> list[Incident]:
        out: list[Incident] = []
        for ip, t in self.by_ip.items():
            if t.flagged_at is None or t.first_ts is None or t.last_ts is None:
                continue
            info = self.ctx.net(ip)
            accounts = sorted(t.names, key=lambda n: -t.names[n])
            cracked = sorted(t.cracked)
            severity = (
                "critical" if cracked else ("high" if t.total >= 10 * self.p.max_failures else "medium")
            )
            summary = f"{t.total} failed logins from {ip}" + (f" ({info.label()})" if info else "")
            summary += f" against {len(accounts)} account(s)"
            reasons = [
                f"{t.in_window()} or more failures within {span(self.p.window)} "
                f"(threshold {self.p.max_failures})"
            ]
            if cracked:
                reasons.append("the same address later logged in successfully as " + ", ".join(cracked))
            out.append(
                Incident(
                    kind="brute_force",
                    subject={"ip": ip, "accounts": accounts[:20]},
                    path="smtp_auth",
                    severity=severity,
                    first_seen=t.first_ts,
                    last_seen=t.last_ts,
                    summary=summary,
                    countries=[info.country] if info and info.country else [],
                    failed_logins=t.total,
                    addresses=[
                        {
                            "ip": ip,
                            "country": info.country if info else None,
                            "org": info.org if info else None,
                        }
                    ],
                    reasons=reasons,
                    timeline=(t.evidence[:1] + t.successes[:3]),
                    evidence=t.evidence + t.successes,
                    recommended_actions=actions_for(
                        "brute_force", ip=ip, accounts=accounts[:10], cracked=cracked
                    ),
                )
            )
        return out
