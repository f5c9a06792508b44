"""Compromised account: a mailbox password in someone else's hands.

The classic picture: an account "logs in" from several countries within
hours, then sends far more mail than it ever did, to many domains, and the
receivers answer with bounces, deferrals and blocklist citations. Either half
alone is weaker evidence: a travelling user logs in from a new country; a
newsletter sender sends a lot. The detector therefore scores two groups of
signals and only reports when they are strong enough together:

* login geography: ``min_countries`` distinct countries within ``window``
  (strong); a country new for the account after ``min_history_logins``
  logins, or "impossible travel" (two countries within ``travel_window``)
  (weak);
* outbound behaviour compared with the account's own history in the same
  data: volume, bounce/deferral ratio, remote complaints citing blocklists
  or spam.

False positives: users behind VPNs or mobile carriers whose exit country
changes (raise ``min_countries``); bulk senders with bad lists (their own
history damps the volume signal). See docs/detectors/compromised_account.md.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from mailwarden.correlate.messages import SMTP_AUTH, MessageState
from mailwarden.correlate.replies import blocklist_named, classify_reply
from mailwarden.detect._tally import FailureTally, failure_evidence
from mailwarden.detect.base import BoundedDict, DetectContext, SlidingDistinct, add_evidence, span
from mailwarden.detect.blocklists import CitedList, cited_list
from mailwarden.detect.playbook import actions_for
from mailwarden.model import AuthFailed, AuthSucceeded, DeliveryAttempted, Event, MessageReceived
from mailwarden.model.findings import Evidence, Incident


@dataclass(frozen=True, slots=True)
class Params:
    """Thresholds; see the module docstring for how they combine."""

    min_countries: int = 3
    window: timedelta = timedelta(hours=24)
    travel_window: timedelta = timedelta(hours=1)
    min_history_logins: int = 5
    min_messages: int = 20
    min_complaints: int = 3
    max_failure_ratio: float = 0.25
    spike_factor: float = 5.0
    min_history_hours: int = 24
    max_tracked: int = 100_000
    max_addresses: int = 500


@dataclass(slots=True)
class _Addr:
    country: str | None
    org: str | None
    first_ts: datetime
    logins: int = 0
    messages: int = 0
    recipients: int = 0
    bounced: int = 0
    deferred: int = 0
    complaints: int = 0


@dataclass(slots=True)
class _Account:
    window: timedelta
    countries: SlidingDistinct = field(init=False)
    failures: FailureTally = field(init=False)
    home: str | None = None
    seen: set[str] = field(default_factory=set)
    logins: int = 0
    peak_countries: int = 0
    geo_strong_at: datetime | None = None
    weak: list[str] = field(default_factory=list)
    last_login: tuple[datetime, str] | None = None
    addrs: dict[str, _Addr] = field(default_factory=dict)
    hours: dict[datetime, int] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)
    blocklists: set[str] = field(default_factory=set)
    cited: dict[str, CitedList] = field(default_factory=dict)
    messages: int = 0
    recipients: int = 0
    bounced: int = 0
    deferred: int = 0
    complaints: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    timeline: dict[str, Evidence] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.countries = SlidingDistinct(self.window, 300)
        self.failures = FailureTally(self.window)

    def mark(self, key: str, ev: Evidence) -> None:
        self.timeline.setdefault(key, ev)

    def foreign(self, country: str | None) -> bool:
        return country is not None and self.home is not None and country != self.home


class CompromisedAccount:
    name = "compromised_account"
    wants: tuple[type[Event], ...] = (AuthSucceeded, AuthFailed, MessageReceived, DeliveryAttempted)

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        self.ctx = ctx
        self.p = params or Params()
        self.accounts: BoundedDict[str, _Account] = BoundedDict(
            self.p.max_tracked, partial(_Account, self.p.window), partial(ctx.note_dropped, self.name)
        )

    # --- feeding -------------------------------------------------------------------

    def _addr(self, acc: _Account, ip: str, ts: datetime) -> _Addr | None:
        a = acc.addrs.get(ip)
        if a is None:
            if len(acc.addrs) >= self.p.max_addresses:
                self.ctx.note_dropped(self.name + ".addresses")
                return None
            info = self.ctx.net(ip)
            a = _Addr(country=info.country if info else None, org=info.org if info else None, first_ts=ts)
            acc.addrs[ip] = a
        return a

    def feed(self, event: Event, msg: MessageState | None) -> None:
        if isinstance(event, AuthSucceeded):
            self._login(event)
        elif isinstance(event, AuthFailed) and event.user:
            acc = self.accounts.touch(event.user.lower())
            failures = acc.failures
            failures.add(event, event.client or "")
            if failures.failed and "first_failed_login" not in acc.timeline:
                acc.mark("first_failed_login", failure_evidence(failures.failed[0]))
        elif msg is not None and msg.origin == SMTP_AUTH and msg.account:
            if isinstance(event, MessageReceived):
                self._message(event, msg)
            elif isinstance(event, DeliveryAttempted):
                self._delivery(event, msg)

    def _login(self, ev: AuthSucceeded) -> None:
        if ev.client is None:
            return
        acc = self.accounts.touch(ev.user.lower())
        a = self._addr(acc, ev.client, ev.ts)
        acc.logins += 1
        acc.first_ts = acc.first_ts or ev.ts
        acc.last_ts = ev.ts
        country = a.country if a else None
        if a is not None:
            a.logins += 1
        if country is None:
            return
        if acc.home is None:
            acc.home = country
        if country not in acc.seen:
            if acc.logins > self.p.min_history_logins and len(acc.weak) < 20:
                acc.weak.append(f"first login from {country} after {acc.logins - 1} logins from elsewhere")
            if len(acc.seen) < 300:
                acc.seen.add(country)
            if acc.foreign(country):
                acc.mark(
                    f"login_from_{country}",
                    Evidence(ev.ts, f"first login from {country} ({ev.client})", ev.source),
                )
        if acc.last_login is not None:
            last_ts, last_country = acc.last_login
            if last_country != country and ev.ts - last_ts < self.p.travel_window and len(acc.weak) < 20:
                minutes = int((ev.ts - last_ts).total_seconds() // 60)
                acc.weak.append(f"impossible travel: {last_country} → {country} in {minutes} min")
        acc.last_login = (ev.ts, country)
        n = acc.countries.add(ev.ts, country)
        acc.peak_countries = max(acc.peak_countries, n)
        if n >= self.p.min_countries and acc.geo_strong_at is None:
            acc.geo_strong_at = ev.ts
            add_evidence(
                acc.evidence,
                ev.ts,
                f"country #{n} within {span(self.p.window)}: {country}",
                ev.source,
            )

    def _message(self, ev: MessageReceived, msg: MessageState) -> None:
        acc = self.accounts.touch(msg.account.lower())
        acc.messages += 1
        acc.first_ts = acc.first_ts or ev.ts
        acc.last_ts = ev.ts
        hour = ev.ts.replace(minute=0, second=0, microsecond=0)
        if hour in acc.hours or len(acc.hours) < 24 * 90:
            acc.hours[hour] = acc.hours.get(hour, 0) + 1
        if ev.client is not None:
            a = self._addr(acc, ev.client, ev.ts)
            if a is not None:
                a.messages += 1
                if acc.foreign(a.country) and "first_foreign_message" not in acc.timeline:
                    acc.mark(
                        "first_foreign_message",
                        Evidence(ev.ts, f"first message sent from {a.country} ({ev.client})", ev.source),
                    )

    def _delivery(self, ev: DeliveryAttempted, msg: MessageState) -> None:
        acc = self.accounts.touch(msg.account.lower())
        acc.last_ts = ev.ts
        # Each mark keeps only its first line: word the evidence only while the key is new.
        if ev.status == "bounced" and "first_bounce" not in acc.timeline:
            acc.mark(
                "first_bounce",
                Evidence(ev.ts, f"first bounce: {ev.dsn} {ev.reply[:120]}", ev.source),
            )
        elif ev.status == "deferred" and "first_deferral" not in acc.timeline:
            acc.mark(
                "first_deferral",
                Evidence(ev.ts, f"first deferral: {ev.dsn} {ev.reply[:120]}", ev.source),
            )
        if ev.status != "sent" and ev.reply:
            category = classify_reply(ev.reply)
            if category in ("blocklist", "spam"):
                acc.complaints += 1
                named = blocklist_named(ev.reply) or category
                if named not in acc.blocklists and len(acc.blocklists) < 20:
                    acc.blocklists.add(named)
                    cited = cited_list(ev.reply)
                    if cited is not None and cited.key not in acc.cited:
                        acc.cited[cited.key] = cited
                        acc.mark(
                            f"blocklist:{cited.key}",
                            Evidence(ev.ts, f"rejected citing blocklist {cited.label}", ev.source),
                        )
                what = f"remote {category} complaint: {ev.reply[:160]}"
                acc.mark("first_complaint", Evidence(ev.ts, what, ev.source))
                add_evidence(acc.evidence, ev.ts, what, ev.source)
                a = acc.addrs.get(msg.client or "")
                if a is not None:
                    a.complaints += 1

    def expire(self, now: datetime) -> None:
        """Forget names that only ever failed (mostly guesses) once their window has passed."""
        limit = now - self.p.window

        def stale(acc: _Account) -> bool:
            last = acc.failures.last_ts
            return acc.logins == 0 and acc.messages == 0 and last is not None and last < limit

        self.accounts.drop_if(stale)

    def message_done(self, msg: MessageState) -> None:
        """Fold a finished (or still queued) message into its account's totals."""
        if msg.origin != SMTP_AUTH or not msg.account:
            return
        acc = self.accounts.get(msg.account.lower())
        if acc is None:
            return
        statuses = msg.recipients.values()
        rcpts = max(len(msg.recipients), msg.nrcpt)
        bounced = sum(1 for s in statuses if s in ("bounced", "expired"))
        deferred = msg.deferred_rcpts
        acc.recipients += rcpts
        acc.bounced += bounced
        acc.deferred += deferred
        for r in msg.recipients:
            if len(acc.domains) >= 5000:
                break
            acc.domains.add(r.rpartition("@")[2].lower())
        a = acc.addrs.get(msg.client or "")
        if a is not None:
            a.recipients += rcpts
            a.bounced += bounced
            a.deferred += deferred
        if not msg.removed and len(acc.queued) < 1000:
            acc.queued.append(msg.queue_id)

    # --- verdicts ------------------------------------------------------------------

    def _spam_signal(self, acc: _Account) -> tuple[bool, list[str]]:
        reasons: list[str] = []
        if acc.messages < self.p.min_messages:
            return False, reasons
        ratio = (acc.bounced + acc.deferred) / acc.recipients if acc.recipients else 0.0
        bad = acc.complaints >= self.p.min_complaints or ratio >= self.p.max_failure_ratio
        if not bad:
            return False, reasons
        hours = sorted(acc.hours.items())
        peak_hour, peak = max(hours, key=lambda h: h[1]) if hours else (None, 0)
        others = [n for h, n in hours if h != peak_hour]
        if len(others) >= self.p.min_history_hours:
            usual = statistics.median(others)
            if peak < self.p.spike_factor * usual:
                return False, [f"volume within the account's usual range (median {usual:g}/h)"]
            reasons.append(f"peak {peak} messages/hour against a usual {usual:g}/h")
        else:
            reasons.append(f"{acc.messages} messages with no earlier sending history in these logs")
        reasons.append(
            f"{acc.recipients} recipients in {len(acc.domains)} domains; {acc.bounced} bounced, "
            f"{acc.deferred} deferred ({ratio:.0%})"
        )
        if acc.complaints:
            names = sorted(n for n in acc.blocklists if n not in ("blocklist", "spam"))
            lists = f" ({', '.join(names)})" if names else ""
            reasons.append(f"{acc.complaints} remote rejections citing blocklists or spam{lists}")
        return True, reasons

    def finish(self) -> list[Incident]:
        out: list[Incident] = []
        for user, acc in self.accounts.items():
            spam, spam_reasons = self._spam_signal(acc)
            strong = acc.geo_strong_at is not None
            if strong and spam:
                severity = "critical"
            elif (spam and (acc.weak or acc.complaints >= self.p.min_complaints)) or strong:
                severity = "high"
            else:
                continue
            out.append(self._incident(user, acc, severity, spam, spam_reasons))
        return out

    def _incident(
        self, user: str, acc: _Account, severity: str, spam: bool, spam_reasons: list[str]
    ) -> Incident:
        reasons: list[str] = []
        if acc.geo_strong_at is not None:
            reasons.append(f"logins from {acc.peak_countries} countries within {span(self.p.window)}")
        reasons.extend(_summarise_weak(acc.weak))
        reasons.extend(spam_reasons)
        suspicious = {ip: a for ip, a in acc.addrs.items() if acc.foreign(a.country)} or acc.addrs
        messages = sum(a.messages for a in suspicious.values()) if acc.geo_strong_at else acc.messages
        recipients = sum(a.recipients for a in suspicious.values()) if acc.geo_strong_at else acc.recipients
        bounced = sum(a.bounced for a in suspicious.values()) if acc.geo_strong_at else acc.bounced
        deferred = sum(a.deferred for a in suspicious.values()) if acc.geo_strong_at else acc.deferred
        countries: list[str] = []
        for a in sorted(acc.addrs.values(), key=lambda a: a.first_ts):
            if a.country and a.country not in countries:
                countries.append(a.country)
        order = (
            "first_failed_login",
            "login",
            "first_foreign_message",
            "first_deferral",
            "first_bounce",
            "first_complaint",
            "blocklist:",
        )
        timeline = sorted(
            (ev for key, ev in acc.timeline.items() if key.startswith(order)), key=lambda e: e.ts
        )
        first = min([e.ts for e in timeline] + ([acc.first_ts] if acc.first_ts else []))
        last = acc.last_ts or first
        evidence = list(timeline) + [e for e in acc.evidence if e not in timeline]
        foreign_ips = sorted(suspicious, key=lambda ip: suspicious[ip].first_ts) if acc.geo_strong_at else []
        summary = f"{user} is used by someone else"
        if countries:
            summary += f": logins from {', '.join(countries)}"
        if spam:
            summary += f"; {messages} messages sent, {bounced} bounced, {deferred} deferred"
        return Incident(
            kind="compromised_account",
            subject={"account": user},
            path="smtp_auth",
            severity=severity,
            first_seen=first,
            last_seen=last,
            summary=summary,
            countries=countries,
            messages=messages,
            recipients=recipients,
            bounced=bounced,
            deferred=deferred,
            failed_logins=acc.failures.total,
            addresses=[
                {
                    "ip": ip,
                    "country": a.country,
                    "org": a.org,
                    "logins": a.logins,
                    "messages": a.messages,
                    "home": not acc.foreign(a.country),
                }
                for ip, a in sorted(acc.addrs.items(), key=lambda kv: kv[1].first_ts)[:50]
            ],
            reasons=reasons,
            timeline=timeline,
            evidence=evidence[:25],
            queued_ids=list(acc.queued),
            recommended_actions=actions_for(
                "compromised_account",
                account=user,
                ips=foreign_ips,
                spam=spam,
                queued=len(acc.queued),
                blocklists=[(c.label, c.delisting) for c in acc.cited.values()],
            ),
        )

    def account_summaries(self, limit: int = 50) -> list[dict[str, object]]:
        """Per-account activity for the report's ``accounts`` section, busiest first."""
        rows = sorted(self.accounts.items(), key=lambda kv: (-kv[1].messages, -kv[1].logins, kv[0]))
        return [
            {
                "account": user,
                "logins": acc.logins,
                "failed_logins": acc.failures.total,
                "countries": sorted(acc.seen),
                "addresses": len(acc.addrs),
                "messages": acc.messages,
                "recipients": acc.recipients,
                "bounced": acc.bounced,
                "deferred": acc.deferred,
                "complaints": acc.complaints,
            }
            for user, acc in rows[:limit]
        ]


def _summarise_weak(weak: list[str]) -> list[str]:
    """One line per kind of weak signal: the first instance, and how many more there were."""
    out: list[str] = []
    for prefix in ("impossible travel", "first login from"):
        same = [w for w in weak if w.startswith(prefix)]
        if same:
            more = f" (and {len(same) - 1} more)" if len(same) > 1 else ""
            out.append(same[0] + more)
    return out
