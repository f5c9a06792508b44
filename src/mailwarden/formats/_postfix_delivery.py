"""Postfix delivery agents, bounce and postsuper lines: what became of each message.

Recipients, remote replies and sender addresses are client- or
remote-chosen text; the splits anchor on the fields log_adhoc.c writes
(``relay=``, ``delay=``, ``dsn=``, ``status=``) and keep the rest as strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailwarden.formats._postfix_fields import NOTHING, QUIET, split_queue_id
from mailwarden.model import BounceNotification, DeliveryAttempted, Event, QueueAction, Record

# log_adhoc.c: to=<r>[, orig_to=<o>], relay=R[, conn_use=N], delay=D[, delays=a/b/c/d]
# [, tls=..][, dsn=X.Y.Z], status=S (reply). Anchored on the ">" that ends the recipient.
_DELIVERY = re.compile(
    r">(?:, orig_to=<(?P<orig>[^>]*)>)?, relay=(?P<relay>[^,\s]*)(?:, conn_use=\d+)?"
    r", delay=(?P<delay>\d{1,12}(?:\.\d{1,9})?)(?:, delays=[\d./]+)?(?:, tls=[^,\s]*)?"
    r"(?:, dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}))?, status=(?P<status>[A-Za-z]+)",
    re.ASCII,
)
# soft_bounce=yes logs SOFTBOUNCE and keeps the message queued: a deferral.
# Address-verification probes (verify(8), sendmail -bv) are not deliveries.
_STATUS = {"SOFTBOUNCE": "deferred", "deliverable": "", "undeliverable": ""}
_BOUNCE_KINDS = (
    ("sender non-delivery notification: ", "non_delivery"),
    ("sender delay notification: ", "delay"),
    ("sender delivery status notification: ", "success"),
    ("postmaster non-delivery notification: ", "postmaster"),
    ("postmaster delay notification: ", "postmaster_delay"),
)
_POSTSUPER = {
    "removed": "deleted",
    "placed on hold": "held",
    "released from hold": "released",
    "requeued": "requeued",
    "expired": "expired",
}
_POSTSUPER_TOTALS = (
    "Deleted: ",
    "Placed on hold: ",
    "Released from hold: ",
    "Requeued: ",
    "Expired: ",
)
_CLIENT_CHATTER = (
    "connect to ",
    "Untrusted TLS connection established to ",
    "Trusted TLS connection established to ",
    "Verified TLS connection established to ",
    "Anonymous TLS connection established to ",
    "SSL_connect error to ",
    "certificate verification failed for ",
    "server certificate verification failed for ",
    "Host offered STARTTLS: ",
)


def delivery(record: Record, qid: str, rest: str, transport: str) -> Sequence[Event] | None:
    """``QID: to=<r>, ..., status=S (reply)`` from any delivery agent or qmgr."""
    m = _DELIVERY.search(rest, 4)
    if m is None:
        return None
    status = _STATUS.get(m["status"], m["status"])
    if not status:
        return NOTHING
    tail = rest[m.end() :]
    reply = tail[2:-1] if tail.startswith(" (") and tail.endswith(")") else tail.lstrip(", ")
    return [
        DeliveryAttempted(
            ts=record.ts,
            source=record.source,
            host=record.host,
            queue_id=qid,
            recipient=rest[4 : m.start()],
            status=status,
            relay=m["relay"],
            dsn=m["dsn"] or "",
            reply=reply,
            orig_recipient=m["orig"] or "",
            delay=float(m["delay"]),
            transport=transport,
        )
    ]


def parse_delivery_agent(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    """smtp, lmtp, local, virtual, pipe, error, discard: only status lines matter.

    ``host ... said``, ``lost connection with``, ``conversation ... timed out``
    and ``connect to`` lines are the reasons the final ``status=`` line repeats.
    """
    split = split_queue_id(msg)
    if split is None:
        return NOTHING if msg.startswith(QUIET) or msg.startswith(_CLIENT_CHATTER) else None
    qid, rest = split
    if rest.startswith("to=<"):
        return delivery(record, qid, rest, service)
    return NOTHING


def parse_bounce(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    split = split_queue_id(msg)
    if split is None:
        return NOTHING if msg.startswith(QUIET) else None
    qid, rest = split
    for prefix, kind in _BOUNCE_KINDS:
        if rest.startswith(prefix):
            notice = rest[len(prefix) :]
            if split_queue_id(notice + ": ") is None:
                return None
            return [
                BounceNotification(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=qid,
                    notice_queue_id=notice,
                    kind=kind,
                )
            ]
    if rest.startswith(("not sending ", "no trace file")):
        return NOTHING
    return None


def parse_postsuper(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    split = split_queue_id(msg)
    if split is None:
        return NOTHING if msg.startswith(QUIET) or msg.startswith(_POSTSUPER_TOTALS) else None
    qid, rest = split
    action = _POSTSUPER.get(rest)
    if action is None:
        return None
    return [QueueAction(ts=record.ts, source=record.source, host=record.host, queue_id=qid, action=action)]


def parse_quiet(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    """Daemons whose every line is life-cycle, statistics or local tooling chatter."""
    return NOTHING


__all__ = [
    "delivery",
    "parse_bounce",
    "parse_delivery_agent",
    "parse_postsuper",
    "parse_quiet",
]
