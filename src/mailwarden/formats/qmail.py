"""qmail (1.03, netqmail, notqmail and the usual patch sets), ucspi-tcp, vpopmail → typed events.

Multilog lines name no program (``sources/native.py`` frames them all as
``qmail``) and splogger prefixes qmail-send's lines with a unix stamp
(``qmail: 1164372671.567234 new msg 12345``), so one handler reads every
program of the family and tells the writers apart by their text.

qmail names a delivery by number and says which message and recipient it
belongs to only when it starts, and a message's origin only by the ``qp``
(the pid of the qmail-queue that queued it) and ``uid`` (the real uid of
qmail-queue's caller) of its ``info msg`` line. The format therefore keeps
bounded per-stream state (a ``FormatSet`` is made per run):

* delivery number → (message, recipient, channel);
* ``bounce msg N qp Q`` → the bounce message that ``info msg ... qp Q`` will name;
* qp → SMTP session, from patched qmail-smtpd lines that log the qp
  (``qlogreceived: ... qp=Q``), in either order with the ``info msg``;
* the last SMTP connection and login of Plesk's ``relaylock``/``smtp_auth``,
  and open ``tcpserver`` sessions (pid → client) on unpatched servers;
* the uids that queue mail for daemons (qmaild, qmails), learned from exact
  links (bounces, qp) and from three agreeing session links, or given.

The rule for ``info msg`` and its limits are in ``docs/formats/qmail.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from mailwarden.formats._qmail_fields import ip, read_report, vpopmail_tail
from mailwarden.formats.base import Handler
from mailwarden.formats.plesk import QMAIL_SIDE, read_handlers, read_relaylock, read_smtp_auth
from mailwarden.model import (
    AuthFailed,
    AuthSucceeded,
    BounceNotification,
    Connect,
    DeliveryAttempted,
    Event,
    LocalSubmission,
    MessageQueued,
    MessageReceived,
    MessageRemoved,
    Record,
    Rejected,
)

__all__ = ["QmailFormat"]

NOTHING: tuple[Event, ...] = ()
_PROGRAMS = frozenset(
    {
        "qmail",
        "qmail-send",
        "qmail-smtpd",
        "qmail-remote",
        "qmail-inject",
        "tcpserver",
        "rblsmtpd",
        "vpopmail",
    }
)
_MAX_LIVE = 200_000
_MAX_DELIVERIES = 100_000
_MAX_LINKS = 20_000
_MAX_SESSIONS = 20_000
_MAX_UIDS = 64
_SESSION_LINKS_TO_LEARN = 3
_PLESK_WINDOW = 120.0  # seconds between relaylock/smtp_auth and the message's info msg
_QP_SPAN = 16  # qmail-smtpd forks qmail-queue: qp is a little above the session pid
_PORT_SERVICE = {
    "25": "smtp", "465": "submission", "587": "submission", "110": "pop3", "995": "pop3",
    "143": "imap", "993": "imap",
}  # fmt: skip
_VCHKPW_SERVICE = {
    "smtp": "smtp", "submission": "submission", "pop3": "pop3", "pop3s": "pop3", "imap": "imap",
    "imaps": "imap", "webmail": "imap",
}  # fmt: skip
# qmail-send, qmail-smtpd and friends: diagnostics that name no client and no message's fate.
_QUIET = (
    "status: ", "alert: ", "warning: ", "trouble ", "unable to ", "internal error", "qmail-clean ",
    "tcpserver: status: ", "tcpserver: pid ", "tcpserver: fatal: ", "triple bounce: ",
    "qlogenvelope: result=accepted ", "qmail-smtpd: pid ",
)  # fmt: skip
_QLOG_CATEGORY = {
    "not_in_rcpthosts": "relay_denied", "dontrelay": "relay_denied", "rblreject": "rbl", "rbldelay": "rbl",
    "nomailbox": "unknown_user", "validrcptto": "unknown_user", "brtlimit": "unknown_user",
    "bmfcheck": "sender", "nullsenderdenied": "sender", "authnotmailfrom": "sender", "bhelocheck": "helo",
}  # fmt: skip
_VCHKPW_FAIL = (
    ("password fail ", "password_mismatch"),
    ("vpopmail user not found ", "unknown_user"),
    ("null password given ", "null_password"),
    ("null user name given ", "null_user"),
    ("system user not found ", "unknown_user"),
    ("system password fail ", "password_mismatch"),
    ("pop access denied ", "access_denied"),
    ("smtp access denied ", "access_denied"),
    ("imap access denied ", "access_denied"),
    ("webmail access denied ", "access_denied"),
)


def _put(table: dict[str, object], key: str, value: object, cap: int) -> int:
    """Insert into a bounded insertion-ordered dict; returns how many entries were evicted."""
    table.pop(key, None)
    table[key] = value
    if len(table) > cap:
        del table[next(iter(table))]
        return 1
    return 0


class _Smtp:
    """What is known of the SMTP session that queued a message."""

    __slots__ = ("client", "service", "ts", "used", "user")

    def __init__(self, client: str | None, service: str, user: str, ts: datetime) -> None:
        self.client = client
        self.service = service
        self.user = user
        self.ts = ts
        self.used = False


class QmailFormat:
    """qmail-send, qmail-smtpd patches, tcpserver, rblsmtpd, vpopmail and Plesk's qmail side."""

    name = "qmail"

    def __init__(self, daemon_uids: Iterable[int] = ()) -> None:
        self.daemon_uids: set[int] = set(daemon_uids)
        self.dropped = 0
        self._live: dict[str, object] = {}
        self._deliveries: dict[str, object] = {}
        self._bounce_qp: dict[str, object] = {}
        self._smtp_qp: dict[str, object] = {}  # qp -> _Smtp (the qmail-smtpd line came first)
        self._queued_qp: dict[str, object] = {}  # qp -> message id (the info msg came first)
        self._sessions: dict[str, object] = {}  # tcpserver pid -> _Smtp
        self._plesk: _Smtp | None = None
        self._uid_votes: dict[int, int] = {}
        self._qlog_seen = False

    def claims(self, program: str) -> bool:
        return program in _PROGRAMS or program in QMAIL_SIDE or program.startswith("vchkpw-")

    def route(self, program: str) -> tuple[Handler, str] | None:
        if program in QMAIL_SIDE:
            return self._plesk_line, program
        if program.startswith("vchkpw-"):
            return self._vchkpw_tagged, program[7:]
        if program in _PROGRAMS:
            return self._line, ""
        return None

    def parse(self, record: Record) -> Sequence[Event] | None:
        route = self.route(record.program)
        return None if route is None else route[0](record, record.message, route[1])

    # --- dispatch ---------------------------------------------------------------------

    def _line(self, record: Record, msg: str, label: str) -> Sequence[Event] | None:
        if msg[:1].isdigit():
            # splogger: "1164372671.567234 new msg 12345"
            stamp, sp, rest = msg.partition(" ")
            if sp and stamp.replace(".", "", 1).isdigit():
                msg = rest
        try:
            return self._dispatch(record, msg)
        except (ValueError, IndexError):  # a digit field too long or truncated: not a line we know
            return None

    def _dispatch(self, record: Record, msg: str) -> Sequence[Event] | None:
        c = msg[:1]
        if c == "d" and msg.startswith("delivery "):
            return self._delivery(record, msg)
        if c == "s" and msg.startswith("starting delivery "):
            return self._starting(msg)
        if c == "n" and msg.startswith("new msg "):
            return self._new(record, msg[8:])
        if c == "i" and msg.startswith("info msg "):
            return self._info(record, msg)
        if c == "e" and msg.startswith("end msg "):
            qid = msg[8:]
            if not qid.isdigit():
                return None
            self._live.pop(qid, None)
            return [MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid)]
        if c == "b" and msg.startswith("bounce msg "):
            qid, sep, qp = msg[11:].partition(" qp ")
            if not (sep and qid.isdigit() and qp.isdigit()):
                return None
            self.dropped += _put(self._bounce_qp, qp, qid, _MAX_LINKS)
            return NOTHING
        if c == "t" and msg.startswith("tcpserver: ok "):
            return self._tcpserver_ok(record, msg[14:])
        if c == "t" and msg.startswith("tcpserver: end "):
            pid, sep, _status = msg[15:].partition(" status ")
            if not (sep and pid.isdigit()):
                return None
            self._sessions.pop(pid, None)
            return NOTHING
        if c == "q" and msg.startswith(("qlogreceived: ", "qlogenvelope: ")):
            return self._qlog(record, msg)
        if c == "r" and msg.startswith("rblsmtpd: "):
            return self._rblsmtpd(record, msg[10:])
        if c == "v" and msg.startswith("vchkpw-"):
            name, sep, rest = msg[7:].partition(": ")
            return self._vchkpw(record, rest, name) if sep else None
        if msg.startswith(_QUIET):
            return NOTHING
        if msg.startswith("qmail-smtpd: ") and " badiprbl: ip " in msg:
            return self._badiprbl(record, msg)
        if msg.startswith(("tcpserver: deny ", "tcpserver: ")):
            return NOTHING if msg.startswith("tcpserver: deny ") else None
        return None

    # --- qmail-send ---------------------------------------------------------------------

    def _new(self, record: Record, qid: str) -> Sequence[Event] | None:
        if not qid.isdigit():
            return None
        if qid in self._live:
            # An inode is reused only after its message is gone: the end msg line was lost.
            self._live.pop(qid)
            gone = MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid)
            self.dropped += _put(self._live, qid, None, _MAX_LIVE)
            return [gone]
        self.dropped += _put(self._live, qid, None, _MAX_LIVE)
        return NOTHING

    def _info(self, record: Record, msg: str) -> Sequence[Event] | None:
        # "info msg N: bytes B from <S> qp Q uid U": the sender is logsafe'd, so it holds no blank.
        colon = msg.find(": bytes ", 9)
        tail = msg.rfind("> qp ")
        if colon < 0 or tail < 0:
            return None
        qid = msg[9:colon]
        size, sep, sender = msg[colon + 8 : tail].partition(" from <")
        qp, sep2, uid_text = msg[tail + 5 :].partition(" uid ")
        if not (sep and sep2 and qid.isdigit() and size.isdigit() and qp.isdigit() and uid_text.isdigit()):
            return None
        if len(uid_text) > 10:
            return None
        uid = int(uid_text)
        ts, src, host = record.ts, record.source, record.host
        out: list[Event] = []
        queued = MessageQueued(
            ts=ts, source=src, host=host, queue_id=qid, sender=sender, size=int(size), nrcpt=0
        )
        orig = self._bounce_qp.pop(qp, None)
        if orig is not None:
            self._learn(uid, exact=True)
            out.append(
                BounceNotification(
                    ts=ts, source=src, host=host, queue_id=str(orig), notice_queue_id=qid, kind="non-delivery"
                )
            )
        else:
            linked = self._smtp_qp.pop(qp, None)
            smtp = linked if isinstance(linked, _Smtp) else None
            if smtp is not None:
                self._learn(uid, exact=True)
            elif not self._qlog_seen:  # with the qlog patch only its qp link is trusted
                smtp = self._session_for(qp, ts)
                if smtp is not None:
                    self._learn(uid, exact=False)
            if smtp is not None:
                out.extend(self._received(record, qid, smtp))
            else:
                # No line said who queued it yet; a later qmail-smtpd qlog line may (then: SMTP).
                self.dropped += _put(self._queued_qp, qp, qid, _MAX_LINKS)
                if uid not in self.daemon_uids:
                    out.append(
                        LocalSubmission(ts=ts, source=src, host=host, queue_id=qid, uid=uid, sender=sender)
                    )
        out.append(queued)
        return out

    def _session_for(self, qp: str, ts: datetime) -> _Smtp | None:
        """The SMTP session that most probably queued this message (no exact qp link)."""
        plesk = self._plesk
        if plesk is not None and not plesk.used and (ts - plesk.ts).total_seconds() <= _PLESK_WINDOW:
            plesk.used = True
            return plesk
        if not self._sessions:
            return None
        qpn = int(qp)
        found: _Smtp | None = None
        for pid in range(qpn - 1, max(0, qpn - _QP_SPAN) - 1, -1):
            cand = self._sessions.get(str(pid))
            if isinstance(cand, _Smtp) and cand.service in ("smtp", "submission"):
                found = cand
                break
        return found

    def _learn(self, uid: int, exact: bool) -> None:
        if uid in self.daemon_uids or len(self.daemon_uids) >= _MAX_UIDS:
            return
        votes = self._uid_votes.get(uid, 0) + 1
        if exact or votes >= _SESSION_LINKS_TO_LEARN:
            self.daemon_uids.add(uid)
            self._uid_votes.pop(uid, None)
        elif len(self._uid_votes) < _MAX_UIDS:
            self._uid_votes[uid] = votes

    def _received(self, record: Record, qid: str, smtp: _Smtp) -> list[Event]:
        return [
            MessageReceived(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=qid,
                service=smtp.service,
                client=smtp.client,
                sasl_username=smtp.user,
            )
        ]

    def _starting(self, msg: str) -> Sequence[Event] | None:
        # "starting delivery D: msg N to remote|local R" (R logsafe'd: no blank)
        num, sep, rest = msg[18:].partition(": msg ")
        qid, sep2, dest = rest.partition(" to ")
        channel, sp, rcpt = dest.partition(" ")
        if not (sep and sep2 and sp and num.isdigit() and qid.isdigit()) or channel not in (
            "remote",
            "local",
        ):
            return None
        self.dropped += _put(self._deliveries, num, (qid, rcpt, channel == "remote"), _MAX_DELIVERIES)
        return NOTHING

    def _delivery(self, record: Record, msg: str) -> Sequence[Event] | None:
        # "delivery D: success|failure|deferral: report"
        num, sep, rest = msg[9:].partition(": ")
        if not (sep and num.isdigit()):
            return None
        verdict, _, report = rest.partition(": ")
        status = {"success": "sent", "failure": "bounced", "deferral": "deferred"}.get(verdict)
        if status is None:
            return NOTHING if rest == "report mangled, will defer" else None
        known = self._deliveries.pop(num, None)
        if not isinstance(known, tuple):
            return NOTHING  # its "starting delivery" line is not in this stream
        qid, rcpt, remote = known
        relay, dsn, reply = read_report(report, remote)
        return [
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
                transport="smtp" if remote else "local",
            )
        ]

    # --- SMTP side ------------------------------------------------------------------------

    def _tcpserver_ok(self, record: Record, rest: str) -> Sequence[Event] | None:
        # "PID localhost:localip:localport remotehost:remoteip:remoteinfo:remoteport"
        pid, _, rest = rest.partition(" ")
        local, _, remote = rest.partition(" ")
        if not pid.isdigit() or not remote:
            return None
        service = _PORT_SERVICE.get(local.rpartition(":")[2], "smtp")
        # The remote host (DNS, escaped) holds no ':'; remoteinfo (ident) may, and is often empty.
        name, _, after = remote.partition(":")
        middle, _, port = after.rpartition(":")
        if not port.isdigit():
            return None
        client = ip(middle[:-1]) if middle.endswith(":") else None
        if client is None:
            client = ip(middle.partition(":")[0])
        if client is None:
            return None
        self.dropped += _put(self._sessions, pid, _Smtp(client, service, "", record.ts), _MAX_SESSIONS)
        return [
            Connect(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=client,
                client_name=name,
            )
        ]

    def _qlog(self, record: Record, msg: str) -> Sequence[Event] | None:
        """qmail-smtpd qlog patch: fixed fields, every byte outside ``!``..``~`` written as ``_``."""
        self._qlog_seen = True
        qp_at = msg.rfind(" qp=")
        rhost_at = msg.rfind(" remotehost=", 0, qp_at)
        rport_at = msg.rfind(" remoteport=", 0, rhost_at)
        rip_at = msg.rfind(" remoteip=", 0, rport_at)
        lport_at = msg.rfind(" localport=", 0, rip_at)
        enc_at = msg.rfind(" encrypted=", 0, lport_at)
        atype_at = msg.rfind(" authtype=", 0, enc_at)
        auser_at = msg.rfind(" authuser=", 0, atype_at)
        if min(qp_at, rhost_at, rport_at, rip_at, lport_at, enc_at, atype_at, auser_at) < 0:
            return None
        fields = msg[14:].split(" ", 4)
        if len(fields) < 4:
            return None
        result, code, reason = fields[0][7:], fields[1][5:], fields[2][7:]
        qp = msg[qp_at + 4 :].partition(" ")[0]
        client = ip(msg[rip_at + 10 : rport_at])
        service = _PORT_SERVICE.get(msg[lport_at + 11 : rip_at], "smtp")
        user = msg[auser_at + 10 : atype_at]
        method = msg[atype_at + 10 : enc_at]
        ts, src, host = record.ts, record.source, record.host
        if result == "accepted":
            if not msg.startswith("qlogreceived") or not qp.isdigit():
                return NOTHING
            smtp = _Smtp(client, service, user, ts)
            out: list[Event] = []
            if user:
                out.append(
                    AuthSucceeded(
                        ts=ts, source=src, host=host, service=service, user=user, client=client, method=method
                    )
                )
            qid = self._queued_qp.pop(qp, None)
            if isinstance(qid, str):
                out.extend(self._received(record, qid, smtp))
            else:
                self.dropped += _put(self._smtp_qp, qp, smtp, _MAX_LINKS)
            return out
        if result != "rejected":
            return None
        if reason in ("authfailed", "authinvalid"):
            return [
                AuthFailed(
                    ts=ts,
                    source=src,
                    host=host,
                    service=service,
                    client=client,
                    user=user,
                    method=method,
                    reason=reason,
                )
            ]
        detail = fields[3][7:] if fields[3].startswith("detail=") else ""
        helo_at = msg.find(" helo=")
        from_at = msg.find(" mailfrom=", helo_at)
        rcpt_at = msg.find(" rcptto=", from_at)
        relay_at = msg.rfind(" relay=", 0, auser_at)
        helo = msg[helo_at + 6 : from_at] if 0 <= helo_at < from_at else ""
        sender = msg[from_at + 10 : rcpt_at] if 0 <= from_at < rcpt_at else ""
        rcpt = msg[rcpt_at + 8 : relay_at] if 0 <= rcpt_at < relay_at else ""
        return [
            Rejected(
                ts=ts,
                source=src,
                host=host,
                service=service,
                client=client,
                code=code,
                category=_QLOG_CATEGORY.get(reason, "other"),
                detail=f"{reason} {detail}".strip(),
                sender=sender,
                recipient=rcpt,
                helo=helo,
            )
        ]

    def _rblsmtpd(self, record: Record, rest: str) -> Sequence[Event] | None:
        """``rblsmtpd: IP pid N: 451 text`` (and the patched ``IP pid N LIST: 451 text``)."""
        addr, sep, after = rest.partition(" pid ")
        pid, sep2, text = after.partition(": ")
        client = ip(addr)
        if not (sep and sep2) or client is None:
            return None
        if text.startswith("greetdelay: "):
            return NOTHING
        pid, _, blocklist = pid.partition(" ")
        code = text[:3] if text[:3].isdigit() else ""
        return [
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=client,
                code=code,
                category="rbl",
                detail=f"{blocklist} {text}".strip(),
            )
        ]

    def _badiprbl(self, record: Record, msg: str) -> Sequence[Event] | None:
        """``qmail-smtpd: 421 badiprbl: ip 192.0.2.7 rbl: zen.example.org`` (a qmail-smtpd RBL patch)."""
        code = msg[13:16]
        at = msg.find(" badiprbl: ip ")
        addr, sep, rbl = msg[at + 14 :].partition(" rbl: ")
        client = ip(addr)
        if client is None or not sep:
            return None
        return [
            Rejected(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=client,
                code=code if code.isdigit() else "",
                category="rbl",
                detail=f"badiprbl {rbl}",
            )
        ]

    # --- vpopmail ---------------------------------------------------------------------

    def _vchkpw_tagged(self, record: Record, msg: str, label: str) -> Sequence[Event] | None:
        return self._vchkpw(record, msg, label)

    def _vchkpw(self, record: Record, rest: str, name: str) -> Sequence[Event] | None:
        service = _VCHKPW_SERVICE.get(name)
        if service is None:
            return None
        ts, src, host = record.ts, record.source, record.host
        if rest.startswith("("):
            # "(PLAIN) login success user@domain:ip"
            close = rest.find(") login success ", 1, 40)
            if close < 0:
                return None
            user, client = vpopmail_tail(rest[close + 16 :])
            return [
                AuthSucceeded(
                    ts=ts,
                    source=src,
                    host=host,
                    service=service,
                    user=user,
                    client=client,
                    method=rest[1:close],
                    layer="backend",
                )
            ]
        for prefix, reason in _VCHKPW_FAIL:
            if rest.startswith(prefix):
                tail = rest[len(prefix) :]
                if tail.startswith("(pass: '"):
                    cut = tail.rfind("') ")
                    if cut < 0:
                        return None
                    tail = tail[cut + 3 :]
                user, client = vpopmail_tail(tail)
                return [
                    # vchkpw is the checkpassword back end behind qmail-smtpd/qmail-pop3d: a front
                    # end (the qlog patch) may log the same try, and layers count once (max).
                    AuthFailed(
                        ts=ts,
                        source=src,
                        host=host,
                        service=service,
                        client=client,
                        user=user,
                        reason=reason,
                        layer="backend",
                    )
                ]
        # setuid/setgid/chdir failures, "user has no password", auto-create trouble: server-side faults.
        return NOTHING if " failed " in rest or rest.startswith("user has no password ") else None

    # --- Plesk's qmail side -----------------------------------------------------------

    def _plesk_line(self, record: Record, msg: str, program: str) -> Sequence[Event] | None:
        if program == "smtp_auth":
            got = read_smtp_auth(record, msg)
            if got is None:
                return None
            events, user = got
            if events and isinstance(events[0], AuthFailed):
                # A session whose AUTH failed queues nothing as that account.
                if self._plesk is not None and self._plesk.client == events[0].client:
                    self._plesk.used = True
            elif user is not None:
                client = events[0].client if isinstance(events[0], AuthSucceeded) else None
                last = self._plesk
                if last is not None and not last.used and last.client == client:
                    last.user = user
                    last.ts = record.ts
                else:
                    self._plesk = _Smtp(client, "smtp", user, record.ts)
            return events
        if program == "relaylock":
            got = read_relaylock(record, msg)
            if got is None:
                return None
            events, client = got
            self._plesk = _Smtp(client, "smtp", "", record.ts)
            return events
        return read_handlers(record, msg)
