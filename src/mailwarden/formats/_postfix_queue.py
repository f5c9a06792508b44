"""Postfix queue-side lines: cleanup, pickup and qmgr.

None of these lines carries a client address that an event could use, so the
security rule here is only to keep client-chosen text (senders, recipients,
header values) as plain strings and to split on the server-written fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailwarden.formats._postfix_delivery import delivery
from mailwarden.formats._postfix_fields import (
    NOTHING,
    QUIET,
    is_small_int,
    split_queue_id,
)
from mailwarden.formats._postfix_smtpd import smtpd_action
from mailwarden.model import (
    Event,
    LocalSubmission,
    MessageExpired,
    MessageInfo,
    MessageQueued,
    MessageRemoved,
    Record,
)

_QUEUED = re.compile(r">, size=(\d{1,18}), nrcpt=(\d{1,9})(?: \(.*\))?", re.ASCII)
_HBC_CLASSES = ("header ", "body ", "content ")
_HBC_ACTIONS = frozenset(
    {
        "reject",
        "warning",
        "info",
        "filter",
        "pass",
        "discard",
        "hold",
        "delay",
        "prepend",
        "replace",
        "redirect",
        "bcc",
        "strip",
    }
)
# Header/body text is logged with %.200s, so the " from <origin>;" that ends it
# starts within this many characters of the header name.
_HBC_TEXT_MAX = 200 + len(" from ")


def parse_qmgr(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    split = split_queue_id(msg)
    if split is None:
        return NOTHING if msg.startswith(QUIET) else None
    qid, rest = split
    if rest == "removed":
        return [MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid)]
    if rest.startswith("from=<"):
        i = rest.rfind(">, size=")
        if i >= 0:
            m = _QUEUED.fullmatch(rest, i)
            if m is None:
                return None
            return [
                MessageQueued(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=qid,
                    sender=rest[6:i],
                    size=int(m[1]),
                    nrcpt=int(m[2]),
                )
            ]
        i = rest.rfind(">, status=")
        if i >= 0 and rest.endswith(", returned to sender"):
            return [
                MessageExpired(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=qid,
                    sender=rest[6:i],
                )
            ]
        return None
    if rest.startswith("to=<"):
        return delivery(record, qid, rest, service)
    if rest.startswith(("skipped, still being delivered", "status=deferred (")):
        return NOTHING
    return None


def parse_pickup(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    """``QID: uid=33 from=<www-data>`` (``orig_id=`` when postsuper -r re-injects)."""
    split = split_queue_id(msg)
    if split is None:
        return NOTHING if msg.startswith(QUIET) else None
    qid, rest = split
    if not rest.startswith("uid="):
        return None
    sp = rest.find(" from=<", 4)
    if sp < 0 or not is_small_int(rest[4:sp]):
        return None
    end = rest.find("> orig_id=", sp)
    if end < 0:
        end = rest.rfind(">")
    if end < sp + 7:
        return None
    return [
        LocalSubmission(
            ts=record.ts,
            source=record.source,
            host=record.host,
            queue_id=qid,
            uid=int(rest[4:sp]),
            sender=rest[sp + 7 : end],
        )
    ]


def _hbc(record: Record, qid: str, action: str, rest: str) -> Sequence[Event] | None:
    """``<header|body> <text> from <origin>; from=<..> ...[: optional text]``."""
    cls, _, content = rest.partition(" ")
    pos = 0
    cut = -1
    while True:
        j = content.find(" from ", pos, _HBC_TEXT_MAX)
        if j < 0:
            break
        semi = content.find(";", j + 6, j + 6 + 300)
        origin = content[j + 6 : semi] if semi >= 0 else ""
        if origin and " " not in origin:
            cut = j
            break
        pos = j + 1
    if cut < 0:
        return None
    text = content[:cut]
    header = script = ""
    value = text
    if cls == "header":
        header, _, value = text.partition(": ")
        if header.lower() == "x-php-originating-script":
            uid, colon, name = value.partition(":")
            script = name if colon and uid.isdigit() else value
    return [
        MessageInfo(
            ts=record.ts,
            source=record.source,
            host=record.host,
            queue_id=qid,
            check=cls,
            action=action,
            header=header,
            value=value,
            script=script,
        )
    ]


def parse_cleanup(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    split = split_queue_id(msg)
    if split is None:
        return NOTHING if msg.startswith(QUIET) else None
    qid, rest = split
    if rest.startswith("message-id="):
        return [
            MessageInfo(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=qid,
                message_id=rest[11:],
            )
        ]
    if rest.startswith("resent-message-id="):
        return [
            MessageInfo(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=qid,
                check="header",
                header="Resent-Message-ID",
                value=rest[18:],
            )
        ]
    if rest.startswith("removed ("):
        # Postfix 3.10+: the queue file was dropped before qmgr saw it.
        return [MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid)]
    colon = rest.find(": ", 0, 32)
    if colon <= 0:
        return None
    action, body = rest[:colon], rest[colon + 2 :]
    if action in ("milter-reject", "milter-hold", "milter-discard"):
        # Same shape as smtpd's; cleanup knows the client but not the SMTP service.
        return smtpd_action(record, qid, rest, "smtp")
    if body.startswith(_HBC_CLASSES) and (
        action in _HBC_ACTIONS or action.startswith(("milter-header-", "milter-body-"))
    ):
        return _hbc(record, qid, action, body)
    if action == "reject" and body.startswith("mime-error "):
        # "<error>: <text, %.100s> from <origin>; from=<s> to=<r>"
        text = body[11:].partition("; from=<")[0].rpartition(" from ")[0]
        return [
            MessageInfo(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=qid,
                check="mime",
                action="reject",
                value=text,
            )
        ]
    return None


__all__ = ["parse_cleanup", "parse_pickup", "parse_qmgr"]
