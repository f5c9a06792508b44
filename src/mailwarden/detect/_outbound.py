"""Shared bookkeeping for the detectors of mail injected without a password.

Unauthenticated local SMTP, an open relay and a web script differ only in
which messages they watch and how they name the culprit; all three count the
culprit's recipients at outside domains in a sliding window of event time,
and fire once that count crosses a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from mailwarden.correlate.messages import EXTERNAL_TRANSPORTS, MessageState
from mailwarden.correlate.replies import classify_reply
from mailwarden.detect.base import MAX_EVIDENCE, BoundedDict, DetectContext, SlidingSum, add_evidence
from mailwarden.model import DeliveryAttempted, Event
from mailwarden.model.findings import Evidence


@dataclass(slots=True)
class Group:
    """One culprit's outbound activity."""

    window: timedelta
    external: SlidingSum = field(init=False)
    flagged_at: datetime | None = None
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    messages: set[str] = field(default_factory=set)
    message_count: int = 0
    recipients: int = 0
    bounced: int = 0
    deferred: int = 0
    complaints: int = 0
    senders: dict[str, int] = field(default_factory=dict)
    clients: dict[str, int] = field(default_factory=dict)
    queued: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    timeline: dict[str, Evidence] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.external = SlidingSum(self.window)


class OutboundDetector:
    """Base: subclasses say which messages they watch (``key``) and build incidents."""

    name = "outbound"
    wants: tuple[type[Event], ...] = (DeliveryAttempted,)
    min_external: int = 5
    window: timedelta = timedelta(hours=1)

    def __init__(self, ctx: DetectContext, min_external: int, window: timedelta, max_tracked: int):
        self.ctx = ctx
        self.min_external = min_external
        self.window = window
        self.groups: BoundedDict[tuple[object, ...], Group] = BoundedDict(
            max_tracked, partial(Group, window), partial(ctx.note_dropped, self.name)
        )
        self.finished: list[tuple[tuple[object, ...], Group]] = []

    def key(self, msg: MessageState) -> tuple[object, ...] | None:
        raise NotImplementedError

    def threshold(self, key: tuple[object, ...]) -> int:
        """Outside recipients within the window that flag ``key``'s group."""
        return self.min_external

    def feed(self, event: Event, msg: MessageState | None) -> None:
        if msg is None or not isinstance(event, DeliveryAttempted):
            return
        key = self.key(msg)
        if key is None or event.transport not in EXTERNAL_TRANSPORTS:
            return
        g = self.groups.touch(key)
        if g.last_ts is not None and event.ts - g.last_ts > self.window:
            # A quiet gap longer than the window ends an episode: two cron mails a day
            # must not be counted into tomorrow's burst, nor tomorrow's cron mail into it.
            if g.flagged_at is not None and len(self.finished) < 1000:
                self.finished.append((key, g))
            g = Group(self.window)
            self.groups.put(key, g)
        g.first_ts = g.first_ts or event.ts
        g.last_ts = event.ts
        if msg.queue_id not in g.messages:
            if len(g.messages) < 100_000:
                g.messages.add(msg.queue_id)
            g.message_count += 1
            if msg.origin_source is not None:
                g.timeline.setdefault(
                    "first_message",
                    Evidence(msg.first_ts, "first message injected", msg.origin_source),
                )
            if msg.sender and (msg.sender in g.senders or len(g.senders) < 100):
                g.senders[msg.sender] = g.senders.get(msg.sender, 0) + 1
            if msg.client and (msg.client in g.clients or len(g.clients) < 100):
                g.clients[msg.client] = g.clients.get(msg.client, 0) + 1
        n = g.external.add(event.ts, 1)
        if event.status == "bounced":
            g.bounced += 1
            g.timeline.setdefault(
                "first_bounce",
                Evidence(event.ts, f"first bounce: {event.reply[:120]}", event.source),
            )
        elif event.status == "deferred":
            g.deferred += 1
        # Evidence is worded only while there is room for it (add_evidence drops the rest).
        if event.status != "sent" and event.reply and classify_reply(event.reply) in ("blocklist", "spam"):
            g.complaints += 1
            if len(g.evidence) < MAX_EVIDENCE:
                add_evidence(g.evidence, event.ts, f"remote complaint: {event.reply[:160]}", event.source)
        if len(g.evidence) < MAX_EVIDENCE:
            what = f"delivery to an outside domain ({event.status})"
            add_evidence(g.evidence, event.ts, what, event.source)
        if g.flagged_at is None and n >= self.threshold(key):
            g.flagged_at = event.ts

    def expire(self, now: datetime) -> None:
        limit = now - self.window
        self.groups.drop_if(lambda g: g.flagged_at is None and g.last_ts is not None and g.last_ts < limit)

    def message_done(self, msg: MessageState) -> None:
        key = self.key(msg)
        g = None if key is None else self.groups.get(key)
        if g is None or msg.queue_id not in g.messages:
            g = next((old for k, old in self.finished if k == key and msg.queue_id in old.messages), None)
        if g is None:
            return
        g.recipients += msg.external
        if not msg.removed and len(g.queued) < 1000:
            g.queued.append(msg.queue_id)

    def flagged(self) -> list[tuple[tuple[object, ...], Group]]:
        live = [(k, g) for k, g in self.groups.items() if g.flagged_at is not None and g.first_ts is not None]
        return self.finished + live


def timeline_of(g: Group) -> list[Evidence]:
    return sorted(g.timeline.values(), key=lambda e: e.ts)


def severity_of(g: Group) -> str:
    if g.complaints or g.message_count >= 100:
        return "critical"
    return "high"
