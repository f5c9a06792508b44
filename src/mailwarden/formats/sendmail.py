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

Stateless session lines (AUTH failures, ruleset rejects, ...) are read in
``_sendmail_session``, fields in ``_sendmail_fields``. Shapes, ignored lines and
citations: ``docs/formats/sendmail.md``;
``tests/golden/sendmail`` is the executable spec.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeVar

from mailwarden.formats._sendmail_fields import (
    LOOPBACK_RELAYS,
    TO_FIELDS,
    TRANSPORTS,
    delay_seconds,
    from_fields,
    handoff_qid,
    host_addr,
    relay_value,
    split_qid,
    to_head,
)
from mailwarden.formats._sendmail_session import (
    NOTHING,
    QUIET,
    about_client,
    auth_failed,
    disconnect,
    pregreet,
    rcpt_error,
    ruleset,
)
from mailwarden.formats.base import Handler
from mailwarden.model import (
    AuthSucceeded,
    BounceNotification,
    DeliveryAttempted,
    Event,
    LocalSubmission,
    MessageQueued,
    MessageReceived,
    MessageRemoved,
    Record,
)

__all__ = ["SendmailFormat"]

_PROGRAMS = frozenset({"sm-mta", "sendmail", "sm-msp-queue", "sm-acceptingconnections"})
_MAX_STATE = 100_000
_MAX_AUTH = 8192
_LOOPBACK = frozenset({"127.0.0.1", "::1"})
_NOTICES = (
    ("DSN: ", "non_delivery"),
    ("return to sender: ", "non_delivery"),
    ("postmaster notify: ", "postmaster"),
    ("sender notify: ", "delay"),
)
_K = TypeVar("_K")
_V = TypeVar("_V")
_PERMANENT = ("User unknown", "Service unavailable", "Host unknown", "Data format error", "Unknown mailer")


def _put(table: OrderedDict[_K, _V], key: _K, value: _V, limit: int) -> int:
    """Insert, evicting the oldest entry past ``limit``; returns how many were dropped.

    The tables are ``OrderedDict``s: evicting the oldest entry of a plain dict
    (``next(iter(d))``) walks over every slot freed since its last resize, which
    cost microseconds per line once a table was full.
    """
    table.pop(key, None)
    table[key] = value
    if len(table) > limit:
        table.popitem(last=False)
        return 1
    return 0


class SendmailFormat:
    """The Sendmail family: sm-mta, sendmail, sm-msp-queue (one state per stream)."""

    name = "sendmail"

    def __init__(self) -> None:
        self._auth: OrderedDict[int, tuple[str, str | None, str]] = OrderedDict()
        # queue id -> (recipients still to finish, whether it is a DSN's own id)
        self._msgs: OrderedDict[str, tuple[int, bool]] = OrderedDict()
        self._local: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._held: OrderedDict[str, MessageReceived] = OrderedDict()
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
        # ``split_qid`` inlined, this runs for every line. ``NOQUEUE: `` and ``AUTH=server``
        # lines never pass the test: their text before the first ": " is not alphanumeric.
        colon = msg.find(": ", 8, 22)
        if colon > 0:
            qid = msg[:colon]
            if qid.isalnum() and qid.isascii():
                rest = msg[colon + 2 :]
                if rest.startswith("from="):
                    return self._from(record, qid, rest)
                if rest.startswith("to="):
                    return self._to(record, qid, rest)
                notice = self._notice(record, qid, rest)
                if notice is not None:
                    return notice
                return self._other(record, qid, rest)
        if msg.startswith("AUTH=server, relay="):
            return self._auth_ok(record, msg)
        return self._other(record, None, msg[9:] if msg.startswith("NOQUEUE: ") else msg)

    def _other(self, record: Record, qid: str | None, rest: str) -> Sequence[Event] | None:
        """Every line that is not a from=, to= or DSN line of a queued message."""
        if rest.startswith("ruleset="):
            return ruleset(record, rest)
        if rest.startswith("AUTH=server, relay="):
            return self._auth_ok(record, rest)
        if rest.startswith("AUTH failure ("):
            return auth_failed(record, rest)
        if rest.startswith("lost input channel from "):
            return disconnect(record, rest, 24, "lost input channel")
        if rest.startswith("rejecting commands from "):
            return pregreet(record, rest)
        if rest.startswith(QUIET):
            return self._release(qid, NOTHING)
        if rest.endswith(" bytes total") and " aliases, longest " in rest:
            # newaliases' summary after "alias database ... rebuilt" (alias.c; seen on a real 8.17)
            return NOTHING
        if rest.startswith("<") and "... " in rest:
            return self._release(qid, rcpt_error(record, rest))
        found = host_addr(rest)
        if found is not None:
            return about_client(record, rest, found)
        return None

    def _release(self, qid: str | None, events: Sequence[Event]) -> Sequence[Event]:
        """Prepend a held ``MessageReceived`` once another line about its message shows up."""
        if qid is None or not self._held:
            return events
        held = self._held.pop(qid, None)
        return events if held is None else [held, *events]

    # --- messages ---------------------------------------------------------------

    def _from(self, record: Record, qid: str, rest: str) -> Sequence[Event] | None:
        found = from_fields(rest)
        if found is None:
            return None
        sender, size, nrcpts, relay, authenticated, msa = found
        if nrcpts == "0" or relay is None:
            return NOTHING  # a session whose recipients were all refused: nothing was queued
        name, client = relay_value(relay)
        ts, source, host = record.ts, record.source, record.host
        count = int(nrcpts)
        old = self._msgs.get(qid)
        events: list[Event] = (
            [MessageRemoved(ts=ts, source=source, host=host, queue_id=qid)]
            if old is not None and not old[1]  # a reused id: the old lifecycle ends first
            else []
        )
        self.dropped += _put(self._msgs, qid, (count, False), _MAX_STATE)
        queued = MessageQueued(
            ts=ts, source=source, host=host, queue_id=qid, sender=sender, size=int(size), nrcpt=count
        )
        if client is None:
            if name.endswith("@localhost") or name == "localhost":
                login = name.rpartition("@")[0] or sender
                self.dropped += _put(self._local, qid, (login, sender), _MAX_STATE)
            events.append(queued)
            return events
        user, method = "", ""
        if authenticated:  # the user name is on the session's AUTH=server line (same pid)
            auth = self._auth.get(record.pid or 0)
            if auth is not None and auth[1] == client:
                user, method = auth[0], auth[2]
        received = MessageReceived(
            ts=ts,
            source=source,
            host=host,
            queue_id=qid,
            service="submission" if msa else "smtp",
            client=client,
            client_name=name,
            sasl_username=user,
            sasl_method=method,
        )
        if not user and client in _LOOPBACK:
            self.dropped += _put(self._held, qid, received, _MAX_AUTH)
        else:
            events.append(received)
        events.append(queued)
        return events

    def _to(self, record: Record, qid: str, rest: str) -> Sequence[Event] | None:
        m = None
        pos = rest.find(", delay=")
        while pos > 0:
            m = TO_FIELDS.match(rest, pos)
            if m is not None:
                break
            pos = rest.find(", delay=", pos + 8)
        if m is None:
            return None
        head = rest[3:pos]
        uid: int | None = None
        ctladdr = ""
        if "," in head or head.endswith(" [more]"):
            rcpts, ctladdr, uid = to_head(head)
        else:  # one recipient and no ctladdr=, the usual case
            one = head.strip()
            if one.startswith("<") and one.endswith(">"):
                one = one[1:-1]
            rcpts = [one] if one else []
        stat = rest[m.end() :]
        delay_text, mailer, relay, dsn, reply = m.groups("")
        relay = relay.strip()
        if stat.startswith("Sent"):
            status = "sent"
        elif dsn.startswith("5.") or stat.startswith(_PERMANENT):
            status = "bounced"
        elif stat.startswith("Deferred") or dsn.startswith("4."):
            status = "deferred"
        elif stat.startswith(("queued", "quarantined")):
            return self._release(qid, NOTHING)
        else:
            return None
        if not rcpts:
            return None
        transport = TRANSPORTS.get(mailer, mailer)
        if relay.endswith(LOOPBACK_RELAYS):
            transport = "local"  # a hand-off to a filter or MTA on this host is not external
        if not reply:
            if stat.startswith("Deferred: "):
                reply = stat[10:]
            elif stat.startswith("Sent (") and stat.endswith(")"):
                reply = stat[6:-1]
            else:
                reply = stat
        ts, source, host = record.ts, record.source, record.host
        events: list[Event] = []
        local = self._local.pop(qid, None) if self._local else None
        if local is not None:
            handoff = handoff_qid(relay, mailer, status, reply)
            events.append(
                LocalSubmission(
                    ts=ts,
                    source=source,
                    host=host,
                    queue_id=handoff or qid,
                    uid=uid,
                    sender=local[1],
                    user=ctladdr or local[0],
                )
            )
            if handoff is not None:
                self._held.pop(handoff, None)
                self._finish(record, qid, len(rcpts), events)
                return events
        held = self._held.pop(qid, None) if self._held else None
        if held is not None:
            events.insert(0, held)
        delay = delay_seconds(delay_text)
        for rcpt in rcpts:
            events.append(
                DeliveryAttempted(
                    ts=ts,
                    source=source,
                    host=host,
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

    def _finish(self, record: Record, qid: str, count: int, events: list[Event]) -> None:
        state = self._msgs.get(qid)
        if state is None:
            return
        left = state[0] - count
        if left > 0:
            self._msgs[qid] = (left, state[1])  # keeps its place in the eviction order
        else:
            del self._msgs[qid]
            events.append(MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid))

    def _notice(self, record: Record, qid: str, rest: str) -> Sequence[Event] | None:
        """``<qid>: <dsn qid>: DSN: User unknown`` and its kin; None when not such a line."""
        notice, sep, text = rest.partition(": ")
        if not sep or split_qid(notice + ": x")[0] != notice:
            return None
        for prefix, base_kind in _NOTICES:
            if text.startswith(prefix):
                kind = "success" if text.startswith("DSN: Return receipt") else base_kind
                self.dropped += _put(self._msgs, notice, (1, True), _MAX_STATE)
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
        client = relay_value(rest[19:end])[1]
        user = rest[end + 9 : mech_at]
        comma = rest.find(",", mech_at + 7)
        method = rest[mech_at + 7 : comma] if comma >= 0 else rest[mech_at + 7 :]
        auth = self._auth
        pid = record.pid or 0
        if len(auth) >= _MAX_AUTH:
            auth.popitem(last=False)
            self.dropped += 1
        auth.pop(pid, None)
        auth[pid] = (user, client, method)
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
