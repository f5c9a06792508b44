"""Postfix smtpd lines: sessions, SASL, message receipts and rejects.

The client address is only ever read from the ``name[addr]`` that Postfix
itself wrote after ``from``, ``connect from``, ``client=`` or ``warning:``;
see ``_postfix_fields.namaddr``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats._postfix_fields import (
    NOTHING,
    auth_failures,
    namaddr,
    reject_category,
    split_queue_id,
    split_reply,
    split_reply_tail,
    tail_fields,
)
from mailwarden.model import (
    AuthFailed,
    AuthSucceeded,
    Connect,
    Disconnect,
    Event,
    MessageInfo,
    MessageReceived,
    ProtocolViolation,
    Record,
    Rejected,
)

# Session-end and diagnostic lines that repeat what "disconnect from" (with its
# command counters) or a later reject line already says.
_SMTPD_QUIET = (
    "lost connection after ",
    "timeout after ",
    "too many errors after ",
    "Anonymous TLS connection established from ",
    "Trusted TLS connection established from ",
    "Untrusted TLS connection established from ",
    "Verified TLS connection established from ",
    "SSL_accept error from ",
    "discarding EHLO keywords: ",
    "using backwards-compatible default setting ",
    "table ",
    "fatal: ",
    "panic: ",
    "error: ",
)
# Access-table and milter actions logged like a reject that did not refuse anything.
_INFO_ACTIONS = frozenset(
    {
        "reject_warning",
        "hold",
        "discard",
        "filter",
        "redirect",
        "bcc",
        "delay",
        "info",
        "warn",
        "permit",
        "milter-hold",
        "milter-discard",
    }
)
_REJECT_ACTIONS = frozenset({"reject", "milter-reject", "hangup"})
# warning: <what> limit exceeded: N from name[addr] for service S -> the refused stage.
_LIMIT_STAGES = {
    "Connection rate": "CONNECT",
    "Connection concurrency": "CONNECT",
    "New TLS session rate": "STARTTLS",
    "AUTH command rate": "AUTH",
    "Message delivery request rate": "MAIL",
    "Recipient address rate": "RCPT",
}


def smtpd_action(record: Record, qid: str, rest: str, service: str) -> Sequence[Event] | None:
    """``QID|NOQUEUE: <action>: <STAGE> from name[addr]: <reply>; from=<..> ...``."""
    colon = rest.find(": ", 0, 20)
    if colon <= 0:
        return None
    action = rest[:colon]
    is_reject = action in _REJECT_ACTIONS
    if not is_reject and action not in _INFO_ACTIONS:
        return None
    sp = rest.find(" from ", colon + 2, colon + 40)
    if sp < 0:
        return None
    stage = rest[colon + 2 : sp]
    na = namaddr(rest, sp + 6, (": ",), at_end=True)
    if na is None or " " in stage:
        return None
    name, client, end = na
    reply, tail = split_reply_tail(rest[end + 2 :])
    code, dsn, detail = split_reply(reply)
    if not is_reject:
        return [
            MessageInfo(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=qid,
                check=stage,
                action=action,
                value=reply,
            )
        ]
    sender, recipient, helo = tail_fields(tail)
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=service,
            client=client,
            client_name=name,
            action=action,
            stage=stage,
            code=code,
            dsn=dsn,
            category=reject_category(detail),
            detail=detail,
            sender=sender,
            recipient=recipient,
            helo=helo,
        )
    ]


def _client_line(record: Record, qid: str, rest: str, service: str) -> Sequence[Event] | None:
    """``QID: client=name[addr][, sasl_method=M, sasl_username=U][, ...]``."""
    na = namaddr(rest, 7, (", ",), at_end=True)
    if na is None:
        return None
    name, client, end = na
    method = user = ""
    extra = rest[end:]
    if extra:
        i = extra.find(", sasl_method=")
        if i >= 0:
            j = extra.find(", ", i + 14)
            method = extra[i + 14 : j if j >= 0 else len(extra)]
        i = extra.find(", sasl_username=")
        if i >= 0:
            start = i + 16
            stop = len(extra)
            for marker in (", sasl_sender=", ", orig_queue_id=", ", orig_client="):
                j = extra.find(marker, start)
                if 0 <= j < stop:
                    stop = j
            user = extra[start:stop]
    received = MessageReceived(
        ts=record.ts,
        source=record.source,
        host=record.host,
        queue_id=qid,
        service=service,
        client=client,
        client_name=name,
        sasl_username=user,
        sasl_method=method,
    )
    if not user:
        return [received]
    return [
        received,
        AuthSucceeded(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=service,
            user=user,
            client=client,
            method=method,
            layer="frontend",
        ),
    ]


def _smtpd_warning(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    if msg.startswith("SASL", 9):
        # Cyrus library and socket problems: no client, and the per-client
        # "authentication failed" line follows for real attempts.
        return NOTHING
    na = namaddr(msg, 9, (": SASL ",))
    if na is not None:
        _, client, end = na
        mech_start = end + 7
        sp = msg.find(" ", mech_start)
        if sp < 0:
            return None
        method = msg[mech_start:sp].upper()
        what = msg[sp + 1 :]
        if what.startswith("authentication failed:"):
            text = what[22:].lstrip(" ")
            reason, _, user = text.partition(", sasl_username=")
        elif what == "authentication aborted":
            reason, user = what, ""
        else:
            return None
        if user == "(unavailable)":
            user = ""
        return [
            AuthFailed(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=client,
                user=user,
                method=method,
                reason=reason,
                layer="frontend",
            )
        ]
    i = msg.find(" limit exceeded: ", 9, 60)
    if i >= 0:
        stage = _LIMIT_STAGES.get(msg[9:i])
        j = msg.find(" from ", i)
        if stage is None or j < 0:
            return None
        lim = namaddr(msg, j + 6, (" for service ",))
        if lim is None:
            return None
        return [
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=lim[1],
                client_name=lim[0],
                action="limit",
                stage=stage,
                category="other",
                detail=msg[9:j],
            )
        ]
    return NOTHING


_PIPELINING = "improper command pipelining after "


def _pipelining(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    """``improper command pipelining after STAGE from name[addr]: <what the client sent>``."""
    sp = msg.find(" from ", len(_PIPELINING), len(_PIPELINING) + 20)
    if sp < 0:
        return None
    na = namaddr(msg, sp + 6, (": ",), at_end=True)
    if na is None:
        return None
    name, client, end = na
    return [
        ProtocolViolation(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=service,
            client=client,
            client_name=name,
            stage=msg[len(_PIPELINING) : sp],
            violation="pipelining",
            detail=msg[end + 2 : end + 202],
        )
    ]


def parse_smtpd(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    """One smtpd line; ``service`` comes from the syslog name (smtp, submission, ...)."""
    if msg.startswith(_PIPELINING):
        return _pipelining(record, msg, service)
    if msg.startswith("connect from "):
        na = namaddr(msg, 13, (), at_end=True)
        if na is None:
            return None
        return [
            Connect(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=na[1],
                client_name=na[0],
            )
        ]
    if msg.startswith("disconnect from "):
        na = namaddr(msg, 16, (" ",), at_end=True)
        if na is None:
            return None
        stats = msg[na[2] + 1 :]
        return [
            Disconnect(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=na[1],
                client_name=na[0],
                auth_failures=auth_failures(stats),
                commands=stats,
            )
        ]
    if msg.startswith("warning: "):
        return _smtpd_warning(record, msg, service)
    split = split_queue_id(msg)
    if split is not None:
        qid, rest = split
        if rest.startswith("client="):
            return _client_line(record, qid, rest, service)
        if rest.startswith(_SMTPD_QUIET) or rest.startswith("abort: TLS from "):
            return NOTHING
        return smtpd_action(record, qid, rest, service)
    if msg.startswith(_SMTPD_QUIET) or msg.startswith(("proxy-accept: ", "proxy-reject: ")):
        return NOTHING
    return None


__all__ = ["parse_smtpd", "smtpd_action"]
