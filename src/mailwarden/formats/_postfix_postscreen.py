"""Postfix postscreen lines: the pre-SMTP bot filter in front of smtpd.

Postscreen logs the client as ``[addr]:port`` with no host name; everything
after that (pre-greeting bytes, pipelined commands) is the client's own text.
A failed bot test becomes ``Rejected(category="postscreen")`` and a DNSBL
score over the threshold ``Rejected(category="rbl")`` whatever the configured
action, because the line does not say whether the test was enforced.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats._postfix_fields import (
    NOTHING,
    bracket_addr,
    reject_category,
    split_reply,
    split_reply_tail,
    tail_fields,
)
from mailwarden.model import Connect, Disconnect, Event, Record, Rejected

_PSC_QUIET = (
    "PASS NEW ",
    "PASS OLD ",
    "HANGUP after ",
    "WHITELISTED ",
    "ALLOWLISTED ",
    "WHITELIST VETO ",
    "ALLOWLIST VETO ",
    "COMMAND TIME LIMIT from ",
    "COMMAND COUNT LIMIT from ",
    "COMMAND LENGTH LIMIT from ",
    "DATA without valid RCPT",
    "BDAT without valid RCPT",
    "cache ",
    "entering STRESS mode",
    "leaving STRESS mode",
    "warning: ",
    "fatal: ",
    "panic: ",
    "table ",
    "using backwards-compatible default setting ",
)
# Failed bot tests: "<TEST> from [addr]:port after <CMD>[: text]".
_PSC_TESTS = ("COMMAND PIPELINING from ", "BARE NEWLINE from ", "NON-SMTP COMMAND from ")


def _psc_rejected(record: Record, *, client: str | None, category: str, detail: str) -> list[Event]:
    """A postscreen test verdict: ``stage="postscreen"``, as no SMTP command was refused yet.

    pflogsumm counts only the later ``NOQUEUE: reject:`` line as a rejection,
    and so does a totals pass that skips this stage.
    """
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="postscreen",
            client=client,
            stage="postscreen",
            category=category,
            detail=detail,
        )
    ]


def _psc_reject(record: Record, rest: str) -> Sequence[Event] | None:
    """``reject: RCPT|CONNECT from [addr]:port: <reply>[; from=<..>, to=<..>, ...]``."""
    sp = rest.find(" from [", 8, 30)
    if sp < 0:
        return None
    stage = rest[8:sp].upper()
    got = bracket_addr(rest, sp + 6)
    if got is None or not rest.startswith(": ", got[1]):
        return None
    reply, tail = split_reply_tail(rest[got[1] + 2 :])
    code, dsn, detail = split_reply(reply)
    category = reject_category(detail)
    if category == "other" and code:
        category = "postscreen"
    sender, recipient, helo = tail_fields(tail)
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="postscreen",
            client=got[0],
            stage=stage,
            code=code,
            dsn=dsn,
            category=category,
            detail=detail,
            sender=sender,
            recipient=recipient,
            helo=helo,
        )
    ]


def parse_postscreen(record: Record, msg: str, service: str) -> Sequence[Event] | None:
    """One postscreen line; failed bot tests become ``Rejected(category="postscreen")``."""
    del service  # postscreen is always its own service
    if msg.startswith("CONNECT from "):
        got = bracket_addr(msg, 13)
        if got is None or not msg.startswith(" to [", got[1]):
            return None
        return [
            Connect(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="postscreen",
                client=got[0],
            )
        ]
    if msg.startswith("DISCONNECT "):
        got = bracket_addr(msg, 11)
        if got is None:
            return None
        return [
            Disconnect(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="postscreen",
                client=got[0],
            )
        ]
    if msg.startswith(_PSC_QUIET):
        return NOTHING
    if msg.startswith("DNSBL rank "):
        i = msg.find(" for ", 11)
        got = bracket_addr(msg, i + 5) if i > 0 else None
        if got is None:
            return None
        return _psc_rejected(record, client=got[0], category="rbl", detail=msg[:i])
    if msg.startswith("PREGREET "):
        i = msg.find(" from [", 9)
        got = bracket_addr(msg, i + 6) if i > 0 else None
        if got is None:
            return None
        return _psc_rejected(
            record,
            client=got[0],
            category="postscreen",
            detail=msg[:i] + msg[got[1] :],
        )
    if msg.startswith(_PSC_TESTS):
        i = msg.find(" from [")
        got = bracket_addr(msg, i + 6)
        if got is None or not msg.startswith(" after ", got[1]):
            return None
        return _psc_rejected(
            record,
            client=got[0],
            category="postscreen",
            detail=msg[:i] + msg[got[1] :],
        )
    if msg.startswith(("BLACKLISTED [", "DENYLISTED [")):
        got = bracket_addr(msg, msg.find("["))
        if got is None:
            return None
        return _psc_rejected(record, client=got[0], category="other", detail=msg[: msg.find(" ")])
    if msg.startswith("NOQUEUE: reject: "):
        return _psc_reject(record, msg[9:])
    if msg.startswith("reject: connect from ["):
        return _psc_reject(record, msg)
    if msg.startswith("[") and ("]:" in msg[:60]):
        # "[addr]:port: discarding EHLO keywords" / "replacing command": chatter.
        return NOTHING
    return None


__all__ = ["parse_postscreen"]
