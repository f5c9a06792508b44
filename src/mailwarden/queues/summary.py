"""``queue summary``: what is stuck, since when, for whom, why -- and who sent it.

Sans-I/O: feed QueuedMessages (attributed or not) to ``Summary.add``; ``to_dict`` gives the
report. Every tally keyed by sender-chosen text is a ``BoundedCounter`` (at most
``MAX_KEYS`` keys; what did not fit is counted in ``dropped``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mailwarden.queues.base import QueuedMessage
from mailwarden.queues.reasons import GROUP_ORDER, explain

MAX_KEYS = 100_000
#: (upper bound in seconds, label); ages at or above the last bound fall into the last bucket
AGE_BUCKETS: tuple[tuple[float, str], ...] = (
    (3600, "<1h"),
    (6 * 3600, "1h-6h"),
    (24 * 3600, "6h-24h"),
    (3 * 86400, "1d-3d"),
    (5 * 86400, "3d-5d"),
    (float("inf"), ">=5d"),
)


@dataclass(slots=True)
class BoundedCounter:
    """A Counter that stops learning new keys at ``limit`` (and counts what it dropped)."""

    limit: int = MAX_KEYS
    counts: Counter[str] = field(default_factory=Counter)
    dropped: int = 0

    def add(self, key: str, n: int = 1) -> None:
        if key in self.counts or len(self.counts) < self.limit:
            self.counts[key] += n
        else:
            self.dropped += n

    def top(self, n: int) -> list[list[object]]:
        return [[k, v] for k, v in self.counts.most_common(n)]


def age_bucket(age_seconds: float) -> str:
    for bound, label in AGE_BUCKETS:
        if age_seconds < bound:
            return label
    return AGE_BUCKETS[-1][1]


@dataclass(slots=True)
class _Reason:
    category: str
    recipients: int = 0
    messages: set[str] = field(default_factory=set)
    example: str = ""


@dataclass(slots=True)
class Summary:
    """Running totals over a queue listing."""

    now: int
    messages: int = 0
    bytes: int = 0
    recipients: int = 0
    oldest: int | None = None
    queues: Counter[str] = field(default_factory=Counter)
    queue_bytes: Counter[str] = field(default_factory=Counter)
    ages: Counter[str] = field(default_factory=Counter)
    senders: BoundedCounter = field(default_factory=BoundedCounter)
    accounts: BoundedCounter = field(default_factory=BoundedCounter)
    uids: BoundedCounter = field(default_factory=BoundedCounter)
    scripts: BoundedCounter = field(default_factory=BoundedCounter)
    clients: BoundedCounter = field(default_factory=BoundedCounter)
    culprits: BoundedCounter = field(default_factory=BoundedCounter)
    recipient_domains: BoundedCounter = field(default_factory=BoundedCounter)
    unattributed: int = 0
    reasons: dict[str, _Reason] = field(default_factory=dict)

    def add(self, m: QueuedMessage) -> None:
        self.messages += 1
        self.bytes += m.size
        self.recipients += len(m.recipients)
        self.oldest = m.arrival if self.oldest is None else min(self.oldest, m.arrival)
        self.queues[m.queue] += 1
        self.queue_bytes[m.queue] += m.size
        self.ages[age_bucket(self.now - m.arrival)] += 1
        self.senders.add(m.sender or "<>")
        a = m.attribution
        if a is not None:
            if a.account:
                self.accounts.add(a.account)
            if a.uid is not None or a.local_user:
                self.uids.add(
                    " ".join(
                        x for x in (f"uid {a.uid}" if a.uid is not None else "", a.local_user or "") if x
                    )
                )
            if a.script:
                self.scripts.add(a.script if a.uid is None else f"{a.uid}:{a.script}")
            if a.client:
                self.clients.add(a.client)
            culprit = a.culprit()
            if culprit:
                self.culprits.add(culprit)
            else:
                self.unattributed += 1
        for r in m.recipients:
            dom = r.domain
            self.recipient_domains.add(dom or "(none)")
            if not r.delay_reason:
                continue
            d = explain(r.delay_reason, dom)
            entry = self.reasons.get(d.label)
            if entry is None:
                if len(self.reasons) >= 1000:
                    continue
                entry = self.reasons[d.label] = _Reason(d.category, example=r.delay_reason[:300])
            entry.recipients += 1
            if len(entry.messages) < MAX_KEYS:
                entry.messages.add(m.id)

    def to_dict(self, top: int = 10) -> dict[str, object]:
        order = {c: i for i, c in enumerate(GROUP_ORDER)}
        reasons = sorted(
            self.reasons.items(), key=lambda kv: (order.get(kv[1].category, 99), -kv[1].recipients, kv[0])
        )
        dropped = {
            name: getattr(self, name).dropped
            for name in ("senders", "accounts", "uids", "scripts", "clients", "culprits", "recipient_domains")
            if getattr(self, name).dropped
        }
        return {
            "now": self.now,
            "totals": {
                "messages": self.messages,
                "bytes": self.bytes,
                "recipients": self.recipients,
                "oldest_arrival": self.oldest,
                "queues": {
                    q: {"messages": n, "bytes": self.queue_bytes[q]} for q, n in sorted(self.queues.items())
                },
            },
            "ages": {label: self.ages.get(label, 0) for _, label in AGE_BUCKETS},
            "culprits": self.culprits.top(top),
            "unattributed": self.unattributed,
            "senders": self.senders.top(top),
            "accounts": self.accounts.top(top),
            "local_uids": self.uids.top(top),
            "scripts": self.scripts.top(top),
            "clients": self.clients.top(top),
            "recipient_domains": self.recipient_domains.top(top),
            "deferral_reasons": [
                {
                    "reason": label,
                    "category": r.category,
                    "recipients": r.recipients,
                    "messages": len(r.messages),
                    "example": r.example,
                }
                for label, r in reasons
            ],
            "dropped": dropped,
        }
