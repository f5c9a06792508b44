"""OpenSMTPD 6.x/7.x syslog lines (tag ``smtpd``) → typed events.

Every line of a session starts with the session's 16-hex id and a role::

    a1b2c3d4e5f60718 smtp connected address=198.51.100.7 host=mail.example.org
    a1b2c3d4e5f60718 smtp authentication user=bob result=ok|permfail|tempfail
    a1b2c3d4e5f60718 smtp message msgid=0badc0de size=1234 nrcpt=2 proto=ESMTP
    a1b2c3d4e5f60718 smtp envelope evpid=0badc0de12345678 from=<a@x> to=<b@y>
    c0ffee0000000001 mta delivery evpid=0badc0de12345678 from=<a@x> to=<b@y> rcpt=<->
        source="192.0.2.1" relay="mx.example.net [203.0.113.5]" delay=2s result="Ok" stat="250 ..."
    c0ffee0000000002 mda delivery evpid=... from=<a@x> to=<b@y> user=b delay=0s result=Ok stat=Delivered
    a1b2c3d4e5f60718 smtp disconnected reason=quit

6.0-6.3 wrote the same with ``event=`` before the verb (``smtp event=connected``) and
one ``event=message msgid= from= to= size= ndest= proto=`` line per recipient.

The client address appears only on the ``connected`` line, so the parser keeps a
bounded map session id → (address, name, authenticated user); the message id
(the first 8 hex digits of every envelope id) is the queue id, and a bounded map
msgid → envelopes still to finish gives ``MessageRemoved``. OpenSMTPD validates
addresses (no blanks or angle brackets in them) and escapes user names with
``strnvis``, so the ``key=value`` fields split on blanks. ``docs/formats/opensmtpd.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailwarden.formats._sendmail_fields import ip as server_ip
from mailwarden.formats.base import Handler
from mailwarden.model import (
    AuthFailed,
    AuthSucceeded,
    Connect,
    DeliveryAttempted,
    Disconnect,
    Event,
    LocalSubmission,
    MessageQueued,
    MessageReceived,
    MessageRemoved,
    Record,
    Rejected,
)

__all__ = ["OpenSmtpdFormat"]

_PROGRAMS = frozenset({"smtpd"})
_NOTHING: tuple[Event, ...] = ()
_MAX_SESSIONS = 16_384
_MAX_MESSAGES = 100_000
_HEX = frozenset("0123456789abcdef")
_DELIVERY = re.compile(
    r"evpid=([0-9a-f]{16}) from=<([^\s<>]*)> to=<([^\s<>]*)>(?: rcpt=<([^\s<>]*)>)?"
    r'(?: source="?([^"\s]*)"?)?(?: relay="?([^"]{0,300}?)"?)?(?: user=(\S{1,64}))?'
    r'(?: delay=(\S{1,32}))? result="?([A-Za-z]{1,16})"?$',
    re.ASCII,
)
_LOOPBACK = ("127.0.0.1 ", "::1 ", "[::1] ", "127.0.0.1", "::1")
_STATUS = {"Ok": "sent", "TempFail": "deferred", "PermFail": "bounced", "Loop": "bounced"}
# Verbs that carry no client, account or message fate (TLS, filters, reports, cert checks).
_QUIET_VERBS = frozenset(
    {
        "tls",
        "starttls",
        "cert-check",
        "client-cert-check",
        "bad-input",
        "connecting",
        "error",
        "closing",
        "host-rejects-all-mails",
        "protocol",
        "filter-response",
        "timeout",
    }
)
_QUIET = ("smtp-out: ", "info: ", "warn: ", "queue: ", "lookup: ", "smtpd: ", "mda: ", "mta: ", "Exiting")
_DURATION = re.compile(r"(?:(\d{1,6})d)?(?:(\d{1,2})h)?(?:(\d{1,2})m)?(?:(\d{1,2})s)?", re.ASCII)


def _ip(text: str) -> str | None:
    """``198.51.100.7`` or ``[2001:db8::1]`` (ss_to_text); IPv4-mapped IPv6 becomes IPv4."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return server_ip(text)


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for token in text.split(" "):
        key, sep, value = token.partition("=")
        if sep:
            out[key] = value
    return out


def _dsn_of(stat: str) -> str:
    """``554 5.7.1 Service unavailable`` -> ``5.7.1``; "" when the reply carries no enhanced code."""
    parts = stat.split(" ", 2)
    if len(parts) > 1 and len(parts[0]) == 3 and parts[0].isdigit():
        code = parts[1]
        pieces = code.split(".")
        if len(pieces) == 3 and all(p.isascii() and p.isdigit() for p in pieces) and code[0] in "245":
            return code
    return ""


def _seconds(text: str) -> float | None:
    m = _DURATION.fullmatch(text)
    if m is None or not text:
        return None
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return float(d * 86400 + h * 3600 + mi * 60 + s)


class OpenSmtpdFormat:
    name = "opensmtpd"

    def __init__(self) -> None:
        self._sessions: dict[str, list[str | None]] = {}
        self._msgs: dict[str, list[int]] = {}  # msgid -> [envelopes left, size, queued?]
        self.dropped = 0

    def claims(self, program: str) -> bool:
        return program in _PROGRAMS

    def route(self, program: str) -> tuple[Handler, str] | None:
        return (self._parse, "") if program in _PROGRAMS else None

    def parse(self, record: Record) -> Sequence[Event] | None:
        return self._parse(record, record.message, "") if record.program in _PROGRAMS else None

    def _parse(self, record: Record, msg: str, label: str) -> Sequence[Event] | None:
        sid = msg[:16]
        if len(msg) < 22 or msg[16] != " " or not _HEX.issuperset(sid):
            return _NOTHING if msg.startswith(_QUIET) else None
        role, _, rest = msg[17:].partition(" ")
        if rest.startswith("event="):
            rest = rest[6:]
        verb, _, tail = rest.partition(" ")
        if role == "smtp":
            return self._smtp(record, sid, verb, tail)
        if role in ("mta", "mda") and verb == "delivery":
            return self._delivery(record, role, tail)
        if role in ("mta", "mda"):
            return _NOTHING if verb in _QUIET_VERBS or verb in ("connected", "disconnected") else None
        return None

    def _session(self, sid: str) -> list[str | None]:
        return self._sessions.get(sid) or [None, "", ""]

    def _smtp(self, record: Record, sid: str, verb: str, tail: str) -> Sequence[Event] | None:
        ts, src, host = record.ts, record.source, record.host
        if verb == "connected":
            f = _fields(tail)
            if "address" not in f:
                return None
            addr = f["address"]
            client = None if addr == "local" else _ip(addr)
            if client is None and addr != "local":
                return None
            self._sessions.pop(sid, None)
            self._sessions[sid] = [client, f.get("host", ""), "", addr]
            if len(self._sessions) > _MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
                self.dropped += 1
            return [
                Connect(
                    ts=ts, source=src, host=host, service="smtp", client=client, client_name=f.get("host", "")
                )
            ]
        session = self._session(sid)
        client, name = session[0], session[1] or ""
        if verb == "authentication":
            f = _fields(tail)
            user, result = f.get("user"), f.get("result")
            if user is None or result not in ("ok", "permfail", "tempfail"):
                return None
            if result == "ok":
                if sid in self._sessions:
                    self._sessions[sid][2] = user
                return [AuthSucceeded(ts=ts, source=src, host=host, service="smtp", user=user, client=client)]
            if result == "tempfail":
                return _NOTHING  # the credentials back end failed, not the password
            return [AuthFailed(ts=ts, source=src, host=host, service="smtp", client=client, user=user)]
        if verb == "message":
            return self._message(record, sid, session, _fields(tail))
        if verb == "envelope":
            return self._envelope(record, _fields(tail))
        if verb in ("disconnected", "closed"):
            self._sessions.pop(sid, None)
            reason = tail.partition("reason=")[2].strip('"')[:200]
            return [
                Disconnect(
                    ts=ts,
                    source=src,
                    host=host,
                    service="smtp",
                    client=client,
                    client_name=name,
                    commands=reason,
                )
            ]
        if verb == "failed-command":
            return self._failed(record, client, name, tail)
        return _NOTHING if verb in _QUIET_VERBS else None

    def _message(
        self, record: Record, sid: str, session: list[str | None], f: dict[str, str]
    ) -> Sequence[Event] | None:
        msgid, size = f.get("msgid", ""), f.get("size", "")
        count = f.get("nrcpt") or f.get("ndest") or ""
        if len(msgid) != 8 or not _HEX.issuperset(msgid) or not (size.isdigit() and count.isdigit()):
            return None
        if len(size) > 15 or len(count) > 9:
            return None
        ts, src, host = record.ts, record.source, record.host
        events: list[Event] = []
        state = self._msgs.get(msgid)
        if "from" in f and state is not None:  # 6.0: one line per recipient of the same message
            state[0] += int(count)
            return events
        client, name, user = session[0], session[1] or "", session[2] or ""
        if session[3:] == ["local"]:
            events.append(LocalSubmission(ts=ts, source=src, host=host, queue_id=msgid, uid=None, sender=""))
        else:
            events.append(
                MessageReceived(
                    ts=ts,
                    source=src,
                    host=host,
                    queue_id=msgid,
                    service="smtp",
                    client=client,
                    client_name=name,
                    sasl_username=user,
                )
            )
        self._msgs[msgid] = [int(count), int(size), 0]
        if len(self._msgs) > _MAX_MESSAGES:
            del self._msgs[next(iter(self._msgs))]
            self.dropped += 1
        if "from" in f:
            events.extend(self._envelope(record, {"evpid": msgid + "00000000", "from": f["from"]}) or ())
        return events

    def _envelope(self, record: Record, f: dict[str, str]) -> Sequence[Event] | None:
        evpid, sender = f.get("evpid", ""), f.get("from", "")
        if (
            len(evpid) != 16
            or not _HEX.issuperset(evpid)
            or not sender.startswith("<")
            or not sender.endswith(">")
        ):
            return None
        state = self._msgs.get(evpid[:8])
        if state is None or state[2]:
            return _NOTHING
        state[2] = 1
        return [
            MessageQueued(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=evpid[:8],
                sender=sender[1:-1],
                size=state[1],
                nrcpt=state[0],
            )
        ]

    def _delivery(self, record: Record, role: str, tail: str) -> Sequence[Event] | None:
        head, sep, stat = tail.partition(" stat=")
        m = _DELIVERY.match(head) if sep else None
        if m is None:
            return None
        status = _STATUS.get(m.group(9))
        if status is None:
            return None
        if stat.startswith('"') and stat.endswith('"') and len(stat) > 1:
            stat = stat[1:-1]
        msgid = m.group(1)[:8]
        relay = m.group(6) or ""
        rcpt = m.group(4) or ""
        events: list[Event] = [
            DeliveryAttempted(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=msgid,
                recipient=m.group(3),
                status=status,
                relay=relay,
                reply=stat,
                orig_recipient="" if rcpt == "-" else rcpt,
                delay=_seconds(m.group(8) or ""),
                dsn=_dsn_of(stat),
                # a relay on loopback is a content filter or proxy (dkimproxy, amavis), whose
                # re-injected copy is delivered again: counting both would double the recipients
                transport="smtp" if role == "mta" and not relay.startswith(_LOOPBACK) else "local",
            )
        ]
        state = self._msgs.get(msgid)
        if state is not None and status != "deferred":
            state[0] -= 1
            if state[0] <= 0:
                del self._msgs[msgid]
                events.append(
                    MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=msgid)
                )
        return events

    def _failed(self, record: Record, client: str | None, name: str, tail: str) -> Sequence[Event] | None:
        if not tail.startswith("command="):
            return None
        command, sep, result = tail[8:].partition(" result=")
        if not sep:
            return None
        command, result = command.strip('"'), result.strip('"')
        if command.upper().startswith("AUTH"):
            return _NOTHING  # the authentication line says the same
        code, _, detail = result.partition(" ")
        if not (len(code) == 3 and code.isdigit() and code[0] == "5"):
            return _NOTHING  # temporary refusals and 2xx/3xx oddities
        stage = command.partition(" ")[0].partition(":")[0].upper()[:16]
        dsn = detail.partition(" ")[0] if detail[:2] in ("5.", "4.") else ""
        low = detail.lower()
        # "550 Invalid recipient" answers both an unknown user and a recipient no rule accepts.
        category = "relay_denied" if "relay" in low else "unknown_user" if dsn == "5.1.1" else "other"
        recipient = ""
        if stage == "RCPT":
            recipient = command.partition("<")[2].partition(">")[0]
        return [
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=client,
                client_name=name,
                stage=stage,
                code=code,
                dsn=dsn,
                category=category,
                detail=detail,
                recipient=recipient,
            )
        ]
