"""Password spraying: one address trying a few passwords against many accounts.

Sprayers stay under per-account lockout thresholds, so the signal is the
number of *distinct* accounts one address fails on, not the number of
failures. False positives: a webmail, proxy or NAT gateway that logs in on
behalf of many users from one address (local addresses are ignored by
default; allowlist the gateway). See docs/detectors/password_spray.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from mailwarden.correlate.messages import MessageState
from mailwarden.detect._tally import FailureTally
from mailwarden.detect.base import BoundedDict, DetectContext, SlidingDistinct, span
from mailwarden.detect.playbook import actions_for
from mailwarden.model import AuthFailed, AuthSucceeded, Event
from mailwarden.model.findings import Incident


@dataclass(frozen=True, slots=True)
class Params:
    """``min_accounts`` distinct accounts failing from one address within ``window``."""

    min_accounts: int = 5
    window: timedelta = timedelta(hours=1)
    ignore_local: bool = True
    max_tracked: int = 100_000


@dataclass(slots=True)
class _State:
    tally: FailureTally
    accounts: SlidingDistinct
    peak: int = 0


class PasswordSpray:
    name = "password_spray"
    wants: tuple[type[Event], ...] = (AuthFailed, AuthSucceeded)

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        self.ctx = ctx
        self.p = params or Params()
        window = self.p.window
        self.by_ip: BoundedDict[str, _State] = BoundedDict(
            self.p.max_tracked,
            lambda: _State(FailureTally(window), SlidingDistinct(window, 1000)),
            partial(ctx.note_dropped, self.name),
        )

    def feed(self, event: Event, msg: MessageState | None) -> None:
        if isinstance(event, AuthFailed):
            ip = event.client
            if ip is None or not event.user or (self.p.ignore_local and self.ctx.is_local(ip)):
                return
            st = self.by_ip.touch(ip)
            st.tally.add(event, event.user)
            n = st.accounts.add(event.ts, event.user.lower())
            st.peak = max(st.peak, n)
            if n >= self.p.min_accounts and st.tally.flagged_at is None:
                st.tally.flagged_at = event.ts
        elif isinstance(event, AuthSucceeded) and event.client is not None:
            found = self.by_ip.get(event.client)
            if found is not None and found.tally.flagged_at is not None:
                found.tally.succeeded(event)

    def expire(self, now: datetime) -> None:
        limit = now - self.p.window
        self.by_ip.drop_if(lambda st: st.tally.idle_since(limit))

    def message_done(self, msg: MessageState) -> None:
        """Credential attacks do not look at messages."""

    def finish(self) -> list[Incident]:
        out: list[Incident] = []
        for ip, st in self.by_ip.items():
            t = st.tally
            if t.flagged_at is None or t.first_ts is None or t.last_ts is None:
                continue
            info = self.ctx.net(ip)
            accounts = sorted(t.names, key=lambda n: (-t.names[n], n))
            cracked = sorted(t.cracked)
            out.append(
                Incident(
                    kind="password_spray",
                    subject={"ip": ip, "accounts": accounts[:20]},
                    path="smtp_auth",
                    severity="critical" if cracked else "high",
                    first_seen=t.first_ts,
                    last_seen=t.last_ts,
                    summary=f"{ip}"
                    + (f" ({info.label()})" if info else "")
                    + f" tried passwords against {len(accounts)} accounts ({t.total} failures)",
                    countries=[info.country] if info and info.country else [],
                    failed_logins=t.total,
                    addresses=[
                        {
                            "ip": ip,
                            "country": info.country if info else None,
                            "org": info.org if info else None,
                        }
                    ],
                    reasons=[
                        f"up to {st.peak} distinct accounts within {span(self.p.window)} "
                        f"(threshold {self.p.min_accounts})"
                    ]
                    + ([f"then logged in successfully as {', '.join(cracked)}"] if cracked else []),
                    timeline=t.evidence[:1] + t.successes[:3],
                    evidence=t.evidence + t.successes,
                    recommended_actions=actions_for(
                        "password_spray", ip=ip, accounts=accounts[:10], cracked=cracked
                    ),
                )
            )
        return out
