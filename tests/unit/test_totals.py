"""Message totals follow pflogsumm's rules (docs/formats/postfix.md), not guesses of our own."""

from __future__ import annotations

from datetime import UTC, datetime

from mailwarden.correlate.messages import MessageTracker
from mailwarden.model import DeliveryAttempted, Source

TS = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _sent(qid: str, relay: str, reply: str) -> DeliveryAttempted:
    return DeliveryAttempted(
        ts=TS,
        source=Source("mail.log", 1),
        queue_id=qid,
        recipient="b@example.com",
        status="sent",
        relay=relay,
        reply=reply,
        transport="smtp",
    )


def test_forwarded_only_when_the_reply_says_so() -> None:
    t = MessageTracker()
    t.feed(_sent("A1", "127.0.0.1[127.0.0.1]:10025", "250 2.0.0 Ok: queued as B2"))  # a content filter hop
    t.feed(_sent("A2", "mx.example.com[192.0.2.25]:25", "250 2.0.0 Ok: queued as C3"))
    t.feed(_sent("A3", "local", "forwarded as 7E8F90A1B2"))
    assert (t.totals.delivered, t.totals.forwarded) == (2, 1)
