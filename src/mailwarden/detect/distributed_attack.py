"""Distributed attack: many addresses failing logins against one account.

Botnets spread guesses over many addresses to stay under per-address bans;
only the account ties them together. False positives: a user whose phone
keeps an old password while roaming between mobile networks (few addresses,
one country, and later successes from the same networks); raise
``min_addresses`` if mobile carriers rotate addresses quickly. See
docs/detectors/distributed_attack.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from mailwarden.correlate.messages import MessageState
from mailwarden.detect._tally import FailureTally
from mailwarden.detect.base import BoundedDict, DetectContext, SlidingDistinct, span
from mailwarden.detect.playbook import actions_for
from mailwarden.model import AuthFailed, Event
from mailwarden.model.findings import Incident


@dataclass(frozen=True, slots=True)
class Params:
    """``min_addresses`` distinct addresses and ``min_failures`` failures on one account in ``window``."""

    min_addresses: int = 5
    min_failures: int = 10
    window: timedelta = timedelta(hours=1)
    ignore_local: bool = True
    max_tracked: int = 100_000


@dataclass(slots=True)
class _State:
    tally: FailureTally
    addrs: SlidingDistinct
    peak: int = 0


class DistributedAttack:
    name = "distributed_attack"
    wants: tuple[type[Event], ...] = (AuthFailed,)

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        self.ctx = ctx
        self.p = params or Params()
        window = self.p.window
        self.by_user: BoundedDict[str, _State] = BoundedDict(
            self.p.max_tracked,
            lambda: _State(FailureTally(window), SlidingDistinct(window, 5000)),
            partial(ctx.note_dropped, self.name),
        )

    def feed(self, event: Event, msg: MessageState | None) -> None:
        if not isinstance(event, AuthFailed) or not event.user or event.client is None:
            return
        if self.p.ignore_local and self.ctx.is_local(event.client):
            return
        st = self.by_user.touch(event.user.lower())
        in_window = st.tally.add(event, event.client)
        n = st.addrs.add(event.ts, event.client)
        st.peak = max(st.peak, n)
        if n >= self.p.min_addresses and in_window >= self.p.min_failures and st.tally.flagged_at is None:
            st.tally.flagged_at = event.ts

    def expire(self, now: datetime) -> None:
        limit = now - self.p.window
        self.by_user.drop_if(lambda st: st.tally.idle_since(limit))

    def message_done(self, msg: MessageState) -> None:
        """Credential attacks do not look at messages."""

    def finish(self) -> list[Incident]:
        out: list[Incident] = []
        for user, st in self.by_user.items():
            t = st.tally
            if t.flagged_at is None or t.first_ts is None or t.last_ts is None:
                continue
            ips = sorted(t.names, key=lambda n: (-t.names[n], n))
            infos = [self.ctx.net(ip) for ip in ips]
            countries = sorted({i.country for i in infos if i is not None and i.country})
            out.append(
                Incident(
                    kind="distributed_attack",
                    subject={"account": user},
                    path="smtp_auth",
                    severity="high",
                    first_seen=t.first_ts,
                    last_seen=t.last_ts,
                    summary=f"{len(ips)} addresses failed {t.total} logins against {user}",
                    countries=countries,
                    failed_logins=t.total,
                    addresses=[
                        {"ip": ip, "country": i.country if i else None, "failures": t.names[ip]}
                        for ip, i in zip(ips[:50], infos[:50], strict=True)
                    ],
                    reasons=[
                        f"up to {st.peak} distinct addresses within {span(self.p.window)} "
                        f"(threshold {self.p.min_addresses})"
                    ],
                    timeline=t.evidence[:1],
                    evidence=t.evidence,
                    recommended_actions=actions_for("distributed_attack", account=user, ips=ips[:20]),
                )
            )
        return out
