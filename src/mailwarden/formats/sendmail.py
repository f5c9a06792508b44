"""Sendmail 8 (8.9 to 8.18) syslog lines → typed events.

Sendmail logs under the name it was started as: ``sm-mta`` (Debian, FreeBSD),
``sendmail`` (RHEL/Fedora: the MTA *and* the submission program), and
``sm-msp-queue`` for the MSP queue runner. Which role wrote a line is read
from the line itself (``relay=user@localhost`` is a local submission, a
bracketed address an SMTP client), never from the name.

A message has no single "done" line, so this parser keeps per-stream state
(all bounded, with drop counters):

* ``_auth``: pid → the ``AUTH=server`` line of the SMTP session that pid
  serves. The line is written without a queue id (``NOQID``); the ``from=``
  line of each message of that session (same pid, ``proto=ESMTPA``) takes the
  user name from it.
* ``_msgs``: queue id → recipients to finish. ``from=`` gives ``nrcpts``;
  every recipient ``Sent`` or bounced counts one; when all are done the
  parser emits ``MessageRemoved``. A deferred recipient keeps the message
  queued, and so does a message whose ``from=`` line was never seen.
* ``_local``: queue id → (login, sender) of a command-line submission
  (``relay=www-data@localhost``); the uid is on the first ``to=`` line's
  ``ctladdr=www-data (33/33)``, so ``LocalSubmission`` is emitted there. When
  that ``to=`` line is the submission program handing the message to the
  local MTA (``mailer=relay``, ``relay=[127.0.0.1]``, ``stat=Sent (<id>
  Message accepted for delivery)``), the submission belongs to the MTA's
  queue id ``<id>`` instead: that message is what gets delivered.
* ``_held``: an unauthenticated message from a loopback client waits here
  for its ``MessageReceived`` until it is known not to be such a hand-off
  (its first delivery, or any other line about it); so a web script's mail
  is one local submission, not a local SMTP injection as well.

Shapes, ignored lines and citations: ``docs/formats/sendmail.md``;
``tests/golden/sendmail`` is the executable spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from mailwarden.formats import _sendmail_fields as f
from mailwarden.formats.base import Handler
from mailwarden.model import (
    AuthFailed,
    AuthSucceeded,
    BounceNotification,
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

__all__ = ["SendmailFormat"]

_PROGRAMS = frozenset({"sm-mta", "sendmail", "sm-msp-queue", "sm-acceptingconnections"})
_NOTHING: tuple[Event, ...] = ()
_MAX_STATE = 100_000
_MAX_AUTH = 8192
_LOOPBACK = frozenset({"127.0.0.1", "::1"})
_LOOPBACK_RELAYS = ("[127.0.0.1]", "[IPv6:::1]", "[::1]")
_STAGES = {"check_rcpt": "RCPT", "check_mail": "MAIL", "check_relay": "CONNECT"}
_NOTICES = (
    ("DSN: ", "non_delivery"),
    ("return to sender: ", "non_delivery"),
    ("postmaster notify: ", "postmaster"),
    ("sender notify: ", "delay"),
)
# Lines understood and deliberately ignored (docs/formats/sendmail.md lists why).
_QUIET = (
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
_K = TypeVar("_K")
_V = TypeVar("_V")
_PERMANENT = ("User unknown", "Service unavailable", "Host unknown", "Data format error", "Unknown mailer")


class _Msg:
    """Recipients a queued message still has to finish."""

    __slots__ = ("done", "notice", "nrcpts")

    def __init__(self, nrcpts: int, notice: bool = False) -> None:
        self.nrcpts = nrcpts
        self.done = 0
        self.notice = notice


def _put(table: dict[_K, _V], key: _K, value: _V, limit: int) -> int:
    """Insert, evicting the oldest entry past ``limit``; returns how many were dropped."""
    table.pop(key, None)
    table[key] = value
    if len(table) > limit:
        del table[next(iter(table))]
        return 1
    return 0


class SendmailFormat:
    """The Sendmail family: sm-mta, sendmail, sm-msp-queue (one state per stream)."""

    name = "sendmail"

    def __init__(self) -> None:
        self._auth: dict[int, tuple[str, str | None, str]] = {}
        self._msgs: dict[str, _Msg] = {}
        self._local: dict[str, tuple[str, str]] = {}
        self._held: dict[str, MessageReceived] = {}
        self.dropped = 0

    def claims(self, program: str) -> bool:
        return program in _PROGRAMS

    def route(self, program: str) -> tuple[Handler, str] | None:
        return (self._parse, program) if program in _PROGRAMS else None

    def parse(self, record: Record) -> Sequence[Event] | None:
        if record.program not in _PROGRAMS:
            return None
        return self._parse(record, record.message, record.program)

    # --- dispatch ---------------------------------------------------------------

    def _parse(self, record: Record, msg: str, label: str) -> Sequence[Event] | None:
        qid, rest = f.split_qid(msg)
        if qid is not None:
            if rest.startswith("from="):
                return self._from(record, qid, rest)
            if rest.startswith("to="):
                return self._to(record, qid, rest)
            notice = self._notice(record, qid, rest)
            if notice is not None:
                return notice
        if rest.startswith("ruleset="):
            return self._ruleset(record, rest)
        if rest.startswith("AUTH=server, relay="):
            return self._auth_ok(record, rest)
        if rest.startswith("AUTH failure ("):
            return self._auth_failed(record, rest)
        if rest.startswith("lost input channel from "):
            return self._disconnect(record, rest, 24, "lost input channel")
        if rest.startswith("rejecting commands from "):
            return self._pregreet(record, rest)
        if rest.startswith(_QUIET):
            return self._release(qid, _NOTHING)
        if rest.startswith("<") and "... " in rest:
            return self._release(qid, self._rcpt_error(record, rest))
        found = f.host_addr(rest)
        if found is not None:
            return self._about_client(record, rest, found)
        return None

    def _release(self, qid: str | None, events: Sequence[Event]) -> Sequence[Event]:
        """Prepend a held ``MessageReceived`` once another line about its message shows up."""
        if qid is None or not self._held:
            return events
        held = self._held.pop(qid, None)
        return events if held is None else [held, *events]

    # --- messages ---------------------------------------------------------------

    def _from(self, record: Record, qid: str, rest: str) -> Sequence[Event] | None:
        relay_at = rest.rfind(", relay=")
        head = rest[:relay_at] if relay_at > 0 else rest
        size_at = head.find(", size=")
        if size_at < 0:
            return None
        fields = head[size_at + 2 :].split(", ", 4)
        if len(fields) < 3 or not fields[0].startswith("size=") or not fields[2].startswith("nrcpts="):
            return None
        size, nrcpts = fields[0][5:], fields[2][7:]
        if not (size.isdigit() and nrcpts.isdigit() and len(size) < 19 and len(nrcpts) < 10):
            return None
        sender = f.bracketless(head[5:size_at])
        if nrcpts == "0" or relay_at < 0:
            return _NOTHING  # a session whose recipients were all refused: nothing was queued
        name, client = f.relay_value(rest[relay_at + 8 :])
        events: list[Event] = []
        old = self._msgs.get(qid)
        if old is not None and not old.notice:
            events.append(MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid))
        self.dropped += _put(self._msgs, qid, _Msg(int(nrcpts)), _MAX_STATE)
        queued = MessageQueued(
            ts=record.ts,
            source=record.source,
            host=record.host,
            queue_id=qid,
            sender=sender,
            size=int(size),
            nrcpt=int(nrcpts),
        )
        if client is None:
            if name.endswith("@localhost") or name == "localhost":
                login = name.rpartition("@")[0] or sender
                self.dropped += _put(self._local, qid, (login, sender), _MAX_STATE)
            events.append(queued)
            return events
        proto_at = head.rfind(", proto=")
        proto = head[proto_at + 8 :].partition(",")[0] if proto_at > 0 else ""
        daemon_at = head.rfind(", daemon=")
        daemon = head[daemon_at + 9 :].partition(",")[0] if daemon_at > 0 else ""
        user, method = "", ""
        if "A" in proto[4:]:  # ESMTPA, ESMTPSA: the session authenticated
            auth = self._auth.get(record.pid or 0)
            if auth is not None and auth[1] == client:
                user, method = auth[0], auth[2]
        received = MessageReceived(
            ts=record.ts,
            source=record.source,
            host=record.host,
            queue_id=qid,
            service="submission" if daemon.startswith("MSA") else "smtp",
            client=client,
            client_name=name,
            sasl_username=user,
            sasl_method=method,
        )
        if client in _LOOPBACK and not user:
            self.dropped += _put(self._held, qid, received, _MAX_AUTH)
        else:
            events.append(received)
        events.append(queued)
        return events

    def _to(self, record: Record, qid: str, rest: str) -> Sequence[Event] | None:
        m = None
        pos = rest.find(", delay=")
        while pos > 0:
            m = f.TO_FIELDS.match(rest, pos)
            if m is not None:
                break
            pos = rest.find(", delay=", pos + 8)
        if m is None:
            return None
        head = rest[3:pos]
        uid: int | None = None
        ctl_at = head.find(", ctladdr=")
        ctladdr = ""
        if ctl_at >= 0:
            ctladdr = head[ctl_at + 10 :]
            head = head[:ctl_at]
            um = f.CTLADDR_UID.search(ctladdr)
            if um is not None:
                uid = int(um.group(1))
                ctladdr = ctladdr[: um.start()]
        rcpts = f.split_recipients(head)
        stat = rest[m.end() :]
        mailer, relay, dsn = m.group(2) or "", (m.group(3) or "").strip(), m.group(4) or ""
        transport = f.TRANSPORTS.get(mailer, mailer)
        if relay.endswith(_LOOPBACK_RELAYS):
            transport = "local"  # a hand-off to a filter or MTA on this host is not external
        if stat.startswith("Sent"):
            status = "sent"
        elif dsn.startswith("5.") or stat.startswith(_PERMANENT):
            status = "bounced"
        elif stat.startswith("Deferred") or dsn.startswith("4."):
            status = "deferred"
        elif stat.startswith(("queued", "quarantined")):
            return self._release(qid, _NOTHING)
        else:
            return None
        if not rcpts:
            return None
        reply = m.group(5) or ""
        if not reply:
            if stat.startswith("Deferred: "):
                reply = stat[10:]
            elif stat.startswith("Sent (") and stat.endswith(")"):
                reply = stat[6:-1]
            else:
                reply = stat
        events: list[Event] = []
        local = self._local.pop(qid, None)
        if local is not None:
            login = ctladdr or local[0]
            handoff = self._handoff(relay, mailer, status, reply)
            sub = LocalSubmission(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=handoff or qid,
                uid=uid,
                sender=local[1],
                user=login,
            )
            if handoff is not None:
                self._held.pop(handoff, None)
                events.append(sub)
                self._finish(record, qid, len(rcpts), events)
                return events
            events.append(sub)
        held = self._held.pop(qid, None) if self._held else None
        if held is not None:
            events.insert(0, held)
        delay = f.delay_seconds(m.group(1))
        for rcpt in rcpts:
            events.append(
                DeliveryAttempted(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=qid,
                    recipient=rcpt,
                    status=status,
                    relay=relay,
                    dsn=dsn,
                    reply=reply,
                    delay=delay,
                    transport=transport,
                )
            )
        if status != "deferred":
            self._finish(record, qid, len(rcpts), events)
        return events

    @staticmethod
    def _handoff(relay: str, mailer: str, status: str, reply: str) -> str | None:
        """The local MTA's queue id when a submission was relayed to it over loopback."""
        if (
            status != "sent"
            or mailer != "relay"
            or not relay.endswith(("[127.0.0.1]", "[IPv6:::1]", "[::1]"))
        ):
            return None
        qid, sep, text = reply.partition(" ")
        if sep and text.startswith("Message accepted for delivery") and f.split_qid(qid + ": x")[0]:
            return qid
        return None

    def _finish(self, record: Record, qid: str, count: int, events: list[Event]) -> None:
        state = self._msgs.get(qid)
        if state is None:
            return
        state.done += count
        if state.done >= state.nrcpts:
            del self._msgs[qid]
            events.append(MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid))

    def _notice(self, record: Record, qid: str, rest: str) -> Sequence[Event] | None:
        """``<qid>: <dsn qid>: DSN: User unknown`` and its kin; None when not such a line."""
        notice, sep, text = rest.partition(": ")
        if not sep or f.split_qid(notice + ": x")[0] != notice:
            return None
        for prefix, base_kind in _NOTICES:
            if text.startswith(prefix):
                kind = "success" if text.startswith("DSN: Return receipt") else base_kind
                self.dropped += _put(self._msgs, notice, _Msg(1, notice=True), _MAX_STATE)
                event = BounceNotification(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=qid,
                    notice_queue_id=notice,
                    kind=kind,
                )
                return self._release(qid, [event])
        return None

    # --- SMTP sessions ----------------------------------------------------------

    def _auth_ok(self, record: Record, rest: str) -> Sequence[Event] | None:
        end = rest.find(", authid=", 19)
        mech_at = rest.rfind(", mech=")
        if end < 0 or mech_at < end:
            return None
        client = f.relay_value(rest[19:end])[1]
        user = rest[end + 9 : mech_at]
        method = rest[mech_at + 7 :].partition(",")[0]
        if len(self._auth) >= _MAX_AUTH:
            del self._auth[next(iter(self._auth))]
            self.dropped += 1
        self._auth.pop(record.pid or 0, None)
        self._auth[record.pid or 0] = (user, client, method)
        return [
            AuthSucceeded(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                user=user,
                client=client,
                method=method,
            )
        ]

    def _auth_failed(self, record: Record, rest: str) -> Sequence[Event] | None:
        relay_at = rest.rfind(", relay=")
        close = rest.find("): ", 14, 40)
        if relay_at < 0 or close < 0:
            return None
        method = rest[14:close]
        body = rest[close + 3 : relay_at]
        user_at = body.find(", user=")
        user = body[user_at + 7 :] if user_at >= 0 else ""
        reason = body.partition(" (")[0]
        _, client = f.relay_value(rest[relay_at + 8 :])
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

    def _ruleset(self, record: Record, rest: str) -> Sequence[Event] | None:
        ruleset = rest[8:].partition(",")[0]
        if ruleset.startswith("tls_") or ", reject=" not in rest:
            return _NOTHING  # outbound TLS policy, discard/quarantine verdicts
        found = list(f.RULESET_RELAY.finditer(rest))
        if not found:
            return None
        # arg1 may spell out the whole field, and the reject text echoes arg1: with
        # 2n+1 matches the middle one is the server's, but then no client is believed.
        real = found[len(found) // 2]
        relay = rest[real.start() + 8 : real.end() - 9]
        name, client = f.relay_value(relay.removesuffix(" (may be forged)"))
        if len(found) > 1:
            name, client = "", None
        code, dsn, detail = f.split_reply(rest[real.end() :])
        arg1 = ""
        if rest.startswith(", arg1=", 8 + len(ruleset)):
            arg1 = f.bracketless(rest[15 + len(ruleset) : real.start()].partition(", arg2=")[0])
        limit = ruleset == "check_relay" and code.startswith("4")
        return [
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=client,
                client_name=name,
                action="limit" if limit else "reject",
                stage={"check_rcpt": "RCPT", "check_mail": "MAIL", "check_relay": "CONNECT"}.get(
                    ruleset, ruleset
                ),
                code=code,
                dsn=dsn,
                category=f.reject_category(ruleset, dsn, detail),
                detail=detail,
                sender=arg1 if ruleset == "check_mail" else "",
                recipient=arg1 if ruleset == "check_rcpt" else "",
            )
        ]

    def _rcpt_error(self, record: Record, rest: str) -> Sequence[Event]:
        """``<a@example.com>... User unknown``: a recipient refused in the SMTP dialogue."""
        addr, _, text = rest.rpartition("... ")
        if text not in ("User unknown", "No such user here", "No such user"):
            return _NOTHING
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
                recipient=f.bracketless(addr),
            )
        ]

    def _disconnect(self, record: Record, rest: str, pos: int, what: str) -> Sequence[Event] | None:
        found = f.host_addr(rest, pos)
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

    def _pregreet(self, record: Record, rest: str) -> Sequence[Event] | None:
        found = f.host_addr(rest, 24)
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

    def _about_client(
        self, record: Record, rest: str, found: tuple[str, str | None, int]
    ) -> Sequence[Event] | None:
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
            return _NOTHING if tail.startswith((": Connection", " Connection", ": timeout")) else None
        return None
