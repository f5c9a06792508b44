"""Sendmail 8 lines about an SMTP session that keep no state: AUTH failures, ruleset
rejects, refused recipients, pre-greeting traffic and the ``host [addr] ...`` lines.

``client`` comes only from the server-written ``relay=host [addr]`` or a leading
``host [addr]`` (see ``_sendmail_fields``); everything else is opaque text.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats._sendmail_fields import (
    RULESET_RELAY,
    bracketless,
    host_addr,
    reject_category,
    relay_value,
    split_reply,
)
from mailwarden.model import AuthFailed, Disconnect, Event, Record, Rejected

NOTHING: tuple[Event, ...] = ()
# Lines understood and deliberately ignored (docs/formats/sendmail.md lists why).
QUIET = (
    "STARTTLS",
    "AUTH=client",
    "Milter",
    "milter",
    "alias database",
    "starting daemon",
    "SYSERR",
    "timeout waiting for input",
    "collect: ",
    "Authentication-Warning",
    "tls_",
    "clone ",
    "done; delay=",
    "Saved message in",
    "headers too large",
    "discarded",
    "Message accepted for delivery",
    "DSN: Return receipt",
    "makeconnection",
    "AUTH: available mech",
    "sender notify",
    "savemail",
    "Losing ",
    "NOQUEUE: SYSERR",
    "grew WorkList",
    "runqueue",
    "rejecting connections on daemon",
    "accepting connections again",
    "restarting ",
    "stopping daemon",
    "SMTP outgoing connect",
    "error connecting to filter",
    "Connection rate limit",
    "ruleset=tls_",
    "ruleset=check_compat",
    "ruleset=trust_auth",
    "to=[more]",
)
_STAGES = {"check_rcpt": "RCPT", "check_mail": "MAIL", "check_relay": "CONNECT"}


def auth_failed(record: Record, rest: str) -> Sequence[Event] | None:
    """``AUTH failure (M): reason (-13) detail[, user=U], relay=host [ip]``."""
    relay_at = rest.rfind(", relay=")
    close = rest.find("): ", 14, 40)
    if relay_at < 0 or close < 0:
        return None
    method = rest[14:close]
    body = rest[close + 3 : relay_at]
    user_at = body.find(", user=")
    user = body[user_at + 7 :] if user_at >= 0 else ""
    reason = body.partition(" (")[0]
    _, client = relay_value(rest[relay_at + 8 :])
    return [
        AuthFailed(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="smtp",
            client=client,
            user=user,
            method=method,
            reason=reason,
        )
    ]


def ruleset(record: Record, rest: str) -> Sequence[Event] | None:
    """``ruleset=check_*, arg1=A, relay=host [ip], reject=CODE DSN text``."""
    rule = rest[8:].partition(",")[0]
    if rule.startswith("tls_") or ", reject=" not in rest:
        return NOTHING  # outbound TLS policy, discard/quarantine verdicts
    found = list(RULESET_RELAY.finditer(rest))
    if not found:
        return None
    # arg1 may spell out the whole field, and the reject text echoes arg1: with
    # 2n+1 matches the middle one is the server's, but then no client is believed.
    real = found[len(found) // 2]
    relay = rest[real.start() + 8 : real.end() - 9]
    name, client = relay_value(relay.removesuffix(" (may be forged)"))
    if len(found) > 1:
        name, client = "", None
    code, dsn, detail = split_reply(rest[real.end() :])
    arg1 = ""
    if rest.startswith(", arg1=", 8 + len(rule)):
        arg1 = bracketless(rest[15 + len(rule) : real.start()].partition(", arg2=")[0])
    limit = rule == "check_relay" and code.startswith("4")
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="smtp",
            client=client,
            client_name=name,
            action="limit" if limit else "reject",
            stage=_STAGES.get(rule, rule),
            code=code,
            dsn=dsn,
            category=reject_category(rule, dsn, detail),
            detail=detail,
            sender=arg1 if rule == "check_mail" else "",
            recipient=arg1 if rule == "check_rcpt" else "",
        )
    ]


def rcpt_error(record: Record, rest: str) -> Sequence[Event]:
    """``<a@example.com>... User unknown``: a recipient refused in the SMTP dialogue."""
    addr, _, text = rest.rpartition("... ")
    if text not in ("User unknown", "No such user here", "No such user"):
        return NOTHING
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="smtp",
            client=None,
            stage="RCPT",
            code="550",
            dsn="5.1.1",
            category="unknown_user",
            detail=text,
            recipient=bracketless(addr),
        )
    ]


def disconnect(record: Record, rest: str, pos: int, what: str) -> Sequence[Event] | None:
    found = host_addr(rest, pos)
    if found is None:
        return None
    return [
        Disconnect(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="smtp",
            client=found[1],
            client_name=found[0],
            commands=what,
        )
    ]


def pregreet(record: Record, rest: str) -> Sequence[Event] | None:
    found = host_addr(rest, 24)
    if found is None or not rest.startswith(" due to pre-greeting traffic", found[2]):
        return None
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="smtp",
            client=found[1],
            client_name=found[0],
            stage="CONNECT",
            category="other",
            detail=rest[found[2] + 8 :],
        )
    ]


def about_client(record: Record, rest: str, found: tuple[str, str | None, int]) -> Sequence[Event] | None:
    """Lines that start with the client: did not issue MAIL, SMTP attack, EXPN/VRFY refused."""
    name, client, end = found
    tail = rest[end:]
    if tail.startswith(" did not issue MAIL/EXPN/VRFY/ETRN"):
        return [
            Disconnect(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=client,
                client_name=name,
                commands="did not issue MAIL/EXPN/VRFY/ETRN",
            )
        ]
    if tail.startswith(": possible SMTP attack: command="):
        return [
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=client,
                client_name=name,
                action="limit",
                stage="SMTP",
                category="other",
                detail=tail[2:],
            )
        ]
    if tail.endswith(" [rejected]") and tail[2:7].upper() in ("EXPN ", "VRFY "):
        return [
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=client,
                client_name=name,
                stage=tail[2:6].upper(),
                category="other",
                detail=tail[2:],
            )
        ]
    if tail.startswith((": ", " ")):
        return NOTHING if tail.startswith((": Connection", " Connection", ": timeout")) else None
    return None
