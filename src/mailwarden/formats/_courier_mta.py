"""The Courier MTA: courieresmtpd (SMTP server), courierd (scheduler) and the delivery modules.

A message is named by Courier's own id (``0038C081.4D026173.000051A4``: the
queue file's inode, time and pid in hex) in every line about it:

* ``courierd: newmsg,id=ID[, auth=USER]: dns; HELO (NAME [ADDR])`` when it
  enters the queue (the part after ``: `` is the "received from" text
  courieresmtpd gave to submit; local mail and DSNs say ``dns; localhost
  (localhost [127.0.0.1])``, see docs/formats/courier.md);
* ``courierd: started,id=ID,from=<S>,module=M,host=H,addr=<R>`` per recipient
  and delivery attempt;
* the module (``courierlocal``, ``courieresmtp``, ...): ``id=ID,from=<S>,addr=<R>: TEXT``
  for each reply line, ``...,addr=<R>[,size=N],success: TEXT`` for a logged
  success, and ``...,addr=<R>[,size=N],status: success|failure|deferred``;
* ``courierd: completed,id=ID`` when one delivery pass is over. The message
  leaves the queue then unless a recipient was deferred in that pass.

Every text field is cut by Courier's logger at 128 bytes (plus ``...``),
control characters become ``.``; sender and recipient are client-chosen.

Per-stream state (reply lines waiting for their verdict, messages in a pass)
is bounded; evictions are counted in ``CourierMta.dropped``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailwarden.formats.base import Handler, normalise_ip
from mailwarden.model import (
    AuthFailed,
    AuthSucceeded,
    Connect,
    DeliveryAttempted,
    Event,
    MessageQueued,
    MessageReceived,
    MessageRemoved,
    Record,
    Rejected,
)

__all__ = ["CourierMta"]

_NOTHING: tuple[Event, ...] = ()
_MAX_REPLIES = 20_000  # messages with reply lines waiting for their verdict
_MAX_RCPTS = 2_000  # recipients of one message
_MAX_LIVE = 100_000
_MAX_REPLY_TEXT = 1000
_REPORTED = "\0"  # a (message, recipient) whose success line was already an event
# What local mail (sendmail), DSNs and local redeliveries give submit as their origin.
_LOCAL_ORIGIN = "dns; localhost (localhost [127.0.0.1])"
_LEVELS = ("INFO: ", "ERR: ", "WARN: ", "DEBUG: ")
_DSN = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_STATUS = {"success": "sent", "failure": "bounced", "deferred": "deferred"}
_TRANSPORTS = {
    "courieresmtp": "smtp",
    "courierlocal": "local",
    "courierdsn": "dsn",
    "courieruucp": "uucp",
    "courierfax": "fax",
}
_COURIERD_QUIET = (
    "Waiting.",
    "queue scan",
    "Purging ",
    "Started ",
    "queuelo=",
    "SHUTDOWN: ",
    "Installing ",
    "Installation complete",
    "Loading STATIC",
    "Starting ",
    "Stopping ",
    "Removing ",
    "Adding ",
    "MODULE ",
    "EXIT: ",
    "ABNORMAL TERMINATION",
    "Will restart",
    "Low on disk space",
    "Cannot read ",
    "Driver dsn not found",
)
_ESMTPD_QUIET = ("couriertls: ", "Unexpected SSL connection shutdown", "STARTTLS", "Maximum connection limit")


def _ip(text: str) -> str | None:
    if not 0 < len(text) <= 64:
        return None
    if text.startswith(("::ffff:", "::FFFF:")) and "." in text:
        text = text[7:]
    return normalise_ip(text)


def _level(message: str) -> str:
    return message.partition(": ")[2] if message.startswith(_LEVELS) else message


def _category(reply: str) -> str:
    low = reply.lower()
    if ("user" in low and "unknown" in low) or "5.1.1" in low or "no such user" in low:
        return "unknown_user"
    if "relay" in low:
        return "relay_denied"
    if "blacklist" in low or "blocklist" in low or "dnsbl" in low or "spamhaus" in low or " rbl" in low:
        return "rbl"
    return "other"


def _code_dsn(reply: str) -> tuple[str, str]:
    code = reply[:3] if reply[:3].isdigit() and reply[3:4] in (" ", "-", "") else ""
    found = _DSN.search(reply, 0, 40)
    return code, found[1] if found else ""


def _auth_user(cmd: str) -> tuple[str, str]:
    """(method, user) of courieresmtpd's ``AUTH METHOD [INITIAL] USER`` (each cut at 20 bytes).

    The initial response is base64; the user is whatever follows it (verbatim).
    A two-token rest whose first token is not base64 is read as one user name.
    """
    if not cmd.startswith("AUTH "):
        return "", ""
    method, _, rest = cmd[5:].partition(" ")
    first, sep, second = rest.partition(" ")
    if sep and first and len(first) <= 20 and _b64(first):
        return method, second
    return method, rest


def _b64(token: str) -> bool:
    return all(c.isalnum() or c in "+/=" for c in token)


class CourierMta:
    """Handlers for the MTA's programs; one instance per stream (``CourierFormat``)."""

    def __init__(self) -> None:
        # id -> recipient -> reply lines so far, or _REPORTED after a logged success.
        self._replies: dict[str, dict[str, str]] = {}
        # id -> deferred in the current pass; present once MessageQueued was emitted.
        self._live: dict[str, bool] = {}
        self.dropped = 0

    def routes(self) -> dict[str, tuple[Handler, str]]:
        routes: dict[str, tuple[Handler, str]] = {
            "courieresmtpd": (self.esmtpd, "smtp"),
            "courierd": (self.courierd, ""),
        }
        for program, transport in _TRANSPORTS.items():
            routes[program] = (self.delivery, transport)
        return routes

    # --- bounded state ---------------------------------------------------------------

    def _remember_reply(self, msg_id: str, recipient: str, text: str) -> None:
        by_rcpt = self._replies.get(msg_id)
        if by_rcpt is None:
            if len(self._replies) >= _MAX_REPLIES:
                del self._replies[next(iter(self._replies))]
                self.dropped += 1
            by_rcpt = self._replies[msg_id] = {}
        old = by_rcpt.get(recipient)
        if old is None:
            if len(by_rcpt) >= _MAX_RCPTS:
                self.dropped += 1
                return
        elif text != _REPORTED:
            if old == _REPORTED or text in old:
                return
            text = f"{old} / {text}"[:_MAX_REPLY_TEXT]
        by_rcpt[recipient] = text

    def _take_reply(self, msg_id: str, recipient: str) -> str:
        by_rcpt = self._replies.get(msg_id)
        if by_rcpt is None:
            return ""
        return by_rcpt.pop(recipient, "")

    def _touch(self, msg_id: str) -> bool:
        """Whether ``msg_id`` is new in this stream (then it is remembered)."""
        if msg_id in self._live:
            return False
        if len(self._live) >= _MAX_LIVE:
            del self._live[next(iter(self._live))]
            self.dropped += 1
        self._live[msg_id] = False
        return True

    # --- courieresmtpd ---------------------------------------------------------------

    def esmtpd(self, record: Record, message: str, label: str) -> Sequence[Event] | None:
        text = _level(message)
        if text.startswith("started,ip=["):
            end = text.find("]", 12)
            if end < 0:
                return None
            client = _ip(text[12:end])
            return (
                Connect(ts=record.ts, source=record.source, host=record.host, service=label, client=client),
            )
        if text.startswith("error,relay="):
            return self._esmtpd_error(record, text[12:], label)
        if text.startswith(_ESMTPD_QUIET):
            return _NOTHING
        return None

    def _esmtpd_error(self, record: Record, rest: str, service: str) -> Sequence[Event] | None:
        # relay and port are written first by the server: everything after may be typed.
        relay, sep, rest = rest.partition(",")
        if not sep:
            return None
        client = _ip(relay)
        if rest.startswith("port="):
            rest = rest.partition(",")[2]
        if rest.startswith("ident="):
            # old form: ident=name,  new: ident="name" (commas in it were blanked)
            if rest.startswith('ident="'):
                close = rest.find('",', 7)
                rest = rest[close + 2 :] if close >= 0 else ""
            else:
                rest = rest.partition(",")[2]
        if rest.startswith('msg="'):
            return self._esmtpd_msg(record, rest[5:], client, service)
        sender = recipient = ""
        stage = ""
        if rest.startswith("from="):
            to_at = rest.rfind(",to=<")
            if to_at >= 0:
                sender = rest[5:to_at]
                close = rest.find(">: ", to_at)
                if close < 0:
                    return None
                recipient, detail, stage = rest[to_at + 5 : close], rest[close + 3 :], "RCPT"
            else:
                close = rest.find(">: ")
                if close < 0:
                    return None
                sender, detail, stage = rest[5 : close + 1], rest[close + 3 :], "MAIL"
            sender = sender.removeprefix("<").removesuffix(">")
        elif rest.startswith("msg="):  # 0.5x: msg="535 ...",cmd: ... without port
            return self._esmtpd_msg(record, rest[4:], client, service)
        else:
            detail = rest.removeprefix(": ")
            if detail == rest:
                return None
        code, dsn = _code_dsn(detail)
        return (
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=client,
                stage=stage,
                code=code,
                dsn=dsn,
                category=_category(detail),
                detail=detail,
                sender=sender,
                recipient=recipient,
            ),
        )

    def _esmtpd_msg(
        self, record: Record, rest: str, client: str | None, service: str
    ) -> Sequence[Event] | None:
        """``msg="REPLY",cmd: COMMAND``: a command refused; ``535`` after AUTH is a failed login."""
        reply = rest.removeprefix('"')
        close = reply.find('",cmd: ')
        if close >= 0:
            reply, cmd = reply[:close], reply[close + 7 :]
        else:
            reply, sep, cmd = reply.partition(",cmd: ")
            if not sep:
                return None
            reply = reply.removesuffix('"')
        if reply.startswith("535 Authentication failed"):
            method, user = _auth_user(cmd)
            return (
                AuthFailed(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    service=service,
                    client=client,
                    user=user,
                    method=method,
                    reason="auth_failed",
                ),
            )
        code, dsn = _code_dsn(reply)
        return (
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=client,
                stage=cmd.partition(" ")[0][:20],
                code=code,
                dsn=dsn,
                category=_category(reply),
                detail=reply,
            ),
        )

    # --- courierd --------------------------------------------------------------------

    def courierd(self, record: Record, message: str, label: str) -> Sequence[Event] | None:
        text = _level(message)
        if text.startswith("newmsg,id="):
            return self._newmsg(record, text[10:])
        if text.startswith("started,id="):
            msg_id, sep, rest = text[11:].partition(",from=<")
            if not sep or not msg_id:
                return None
            if not self._touch(msg_id):
                return _NOTHING
            end = rest.find(">,module=")
            return (
                MessageQueued(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=msg_id,
                    sender=rest[:end] if end >= 0 else rest,
                    size=0,
                    nrcpt=0,
                ),
            )
        if text.startswith("completed,id="):
            msg_id = text[13:]
            if self._live.get(msg_id):
                self._live[msg_id] = False  # deferred recipients: another pass will come
                return _NOTHING
            self._live.pop(msg_id, None)
            self._replies.pop(msg_id, None)
            return (MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=msg_id),)
        if text.startswith(_COURIERD_QUIET):
            return _NOTHING
        return None

    def _newmsg(self, record: Record, rest: str) -> Sequence[Event] | None:
        head, sep, origin = rest.partition(": ")
        msg_id, comma, auth = head.partition(", auth=")
        if not msg_id or "," in msg_id:
            return None
        if not sep or (origin == _LOCAL_ORIGIN and not comma):
            # local mail, a DSN or a re-injection: Courier does not log which (see the doc page)
            return _NOTHING
        client = None
        if origin.startswith("dns; ") and origin.endswith("])"):
            open_at = origin.rfind("[")
            if open_at > 0:
                client = _ip(origin[open_at + 1 : -2])
        events: list[Event] = [
            MessageReceived(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=msg_id,
                service="smtp",
                client=client,
                sasl_username=auth,
            )
        ]
        if auth:
            events.append(
                AuthSucceeded(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    service="smtp",
                    user=auth,
                    client=client,
                )
            )
        return events

    # --- delivery modules ------------------------------------------------------------

    def delivery(self, record: Record, message: str, label: str) -> Sequence[Event] | None:
        text = _level(message)
        if not text.startswith("id="):
            return _NOTHING if text.startswith(("Unable to ", "Starting", "Stopping")) else None
        msg_id, sep, rest = text[3:].partition(",from=<")
        if not sep or not msg_id or "," in msg_id:
            return None
        addr_at = rest.find(">,addr=<")
        if addr_at < 0:
            return None
        rest = rest[addr_at + 8 :]
        # verdict line: R>[,size=N],status: WORD  (all server-written after R)
        head, sep, word = rest.rpartition(",status: ")
        if sep and word in _STATUS:
            recipient = _strip_size(head)
            if recipient is not None:
                return self._verdict(record, msg_id, recipient, _STATUS[word], label)
        close = rest.find(">: ")
        success = rest.find(",success: ")
        if success >= 0 and (close < 0 or success < close):
            recipient = _strip_size(rest[:success])
            if recipient is None:
                return None
            reply = rest[success + 10 :]
            self._remember_reply(msg_id, recipient, _REPORTED)
            relay = ""
            if reply.startswith("delivered: "):
                relay = reply[11:]
            return (
                DeliveryAttempted(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=msg_id,
                    recipient=recipient,
                    status="sent",
                    relay=relay,
                    dsn=_code_dsn(reply)[1] or "2.0.0",
                    reply=reply,
                    transport=label,
                ),
            )
        if close < 0:
            return None
        self._remember_reply(msg_id, rest[:close], rest[close + 3 :])
        return _NOTHING

    def _verdict(
        self, record: Record, msg_id: str, recipient: str, status: str, transport: str
    ) -> Sequence[Event]:
        reply = self._take_reply(msg_id, recipient)
        if reply == _REPORTED:
            return _NOTHING
        if status == "deferred":
            self._touch(msg_id)
            self._live[msg_id] = True
        dsn = ""
        for part in reply.split(" / "):
            dsn = _code_dsn(part)[1] or dsn
        if not dsn:
            dsn = {"sent": "2.0.0", "bounced": "5.0.0", "deferred": "4.0.0"}[status]
        return (
            DeliveryAttempted(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=msg_id,
                recipient=recipient,
                status=status,
                dsn=dsn,
                reply=reply,
                transport=transport,
            ),
        )


def _strip_size(head: str) -> str | None:
    """``R>`` or ``R>,size=N`` -> R; None when the server's ``>`` is missing."""
    comma = head.rfind(">,size=")
    if comma >= 0 and head[comma + 7 :].isdigit():
        head = head[: comma + 1]
    if not head.endswith(">"):
        return None
    return head[:-1]
