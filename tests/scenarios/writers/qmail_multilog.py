"""Writes a netqmail + vpopmail + Dovecot box under daemontools for scenario timelines.

Same methods and semantics as ``tests/scenarios/logwriter.LogWriter`` (the
Postfix one). The layout is the "Life with qmail" one (``/var/log/qmail``):

* ``qmail/current``: qmail-send through ``multilog t`` (``@4000…`` TAI64N
  labels), the shapes of ``tests/golden/qmail/send.log`` (``new msg``, ``info
  msg … qp Q uid U``, ``starting delivery``, logsafe'd qmail-remote reports,
  ``bounce msg … qp Q``, ``end msg``, ``status:``);
* ``qmail/smtpd/current``: ``tcpserver -v`` running qmail-smtpd with the
  sagredo-dev/qmail qlog patch (SMTP AUTH against vpopmail's vchkpw), the
  shapes of ``tests/golden/qmail/smtpd.log`` (``tcpserver: pid/ok/end``,
  ``qlogenvelope:`` per recipient and for a failed AUTH, ``qlogreceived:``
  naming the qp of the qmail-queue that queued the message);
* ``maillog``: Dovecot 2.3 checking passwords against vpopmail's MySQL table
  (passdb sql) through syslog, the shapes of ``tests/scenarios/logwriter.py``
  and ``tests/golden/dovecot/passdb.log``;
* ``php/mail.log``: PHP's ``mail.log`` ini directive (PHP 7+ shape of
  ``tests/golden/php_mail/mail.log``, ``date.timezone = UTC``): qmail logs no
  script path, only qmail-inject's uid, so the script is named there
  (``carries_script`` is True).

The uids are illustrative (qmail's are assigned at install): 1004 for qmaild
(the uid qmail-smtpd queues as), 1012 for qmails (qmail-send's bounces).

Naive datetimes are local wall time: syslog stamps are written as such,
TAI64N labels from ``t.astimezone()`` (2^62 + 10 + unix seconds, then
nanoseconds). Lines of one instant keep their order (a sequence number),
and qmail-smtpd's ``qlogreceived`` (logged when qmail-queue returns) is
placed a few milliseconds before qmail-send's ``new msg``/``info msg``.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, NamedTuple

_TAI64_OFFSET = (1 << 62) + 10
_LOCAL = "mx.example.com"
_LOCAL_IP = "192.0.2.2"
_MX = "192.0.2.250"
_QMAILD_UID = 1004
_QMAILS_UID = 1012
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# rcpt outcome -> (verdict, logsafe'd qmail-remote report)
_OUTCOMES = {
    "sent": ("success", f"{_MX}_accepted_message./Remote_host_said:_250_2.0.0_Ok:_queued_as_{{n}}/"),
    "block": (
        "failure",
        f"{_MX}_does_not_like_recipient./Remote_host_said:_554_5.7.1_Service_unavailable;_Client_host_"
        f"[192.0.2.1]_blocked_using_zen.spamhaus.org;_https://www.spamhaus.org/query/ip/192.0.2.1/"
        f"Giving_up_on_{_MX}./",
    ),
    "rate": (
        "deferral",
        f"{_MX}_does_not_like_recipient./Remote_host_said:_421_4.7.0_[192.0.2.1]_Our_system_has_detected_"
        "an_unusual_rate_of_unsolicited_mail_originating_from_your_IP_address./",
    ),
    "nouser": (
        "failure",
        f"{_MX}_does_not_like_recipient./Remote_host_said:_550_5.1.1_The_email_account_that_you_tried_to_"
        f"reach_does_not_exist./Giving_up_on_{_MX}./",
    ),
}


def tai64n(t: datetime) -> str:
    """The multilog label of local wall time ``t`` (naive: ``astimezone`` reads it as local)."""
    seconds = int(t.replace(microsecond=0).astimezone().timestamp())
    return f"@{_TAI64_OFFSET + seconds:016x}{t.microsecond * 1000:08x}"


class _Session(NamedTuple):
    """One tcpserver connection: the client, its port, the local port, qmail-smtpd's pid."""

    ip: str
    rport: int
    port: int
    pid: int


class QmailMultilogWriter:
    """Collects (time, order, line) per log file and writes each in time order."""

    carries_script: ClassVar[bool] = True  # through PHP's mail.log, not qmail's own lines

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.send: list[tuple[datetime, int, str]] = []
        self.smtpd: list[tuple[datetime, int, str]] = []
        self.maillog: list[tuple[datetime, int, str]] = []
        self.php: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._inode = itertools.count(3_612_487)
        self._pid = itertools.count(31_400, 3)  # tcpserver's child; its qmail-queue is pid + 2
        self._qp = itertools.count(24_301, 7)  # qmail-inject's and qmail-send's own qmail-queue
        self._delivery = itertools.count(1)
        self._port = itertools.count(40_000)
        self._syslog_pid = itertools.count(2_100)
        self._session = itertools.count(0x6B2F_9C11_0000)

    # --- helpers -------------------------------------------------------------------------

    def _send(self, t: datetime, msg: str, ms: int = 0) -> None:
        when = t + timedelta(milliseconds=ms)
        self.send.append((when, next(self._seq), f"{tai64n(when)} {msg}"))

    def _smtpd(self, t: datetime, msg: str, ms: int = 0) -> None:
        when = t + timedelta(milliseconds=ms)
        self.smtpd.append((when, next(self._seq), f"{tai64n(when)} {msg}"))

    def _syslog(self, t: datetime, tag: str, msg: str) -> None:
        stamp = f"{t:%b} {t.day:2d} {t:%H:%M:%S}"
        self.maillog.append((t, next(self._seq), f"{stamp} mx {tag}: {msg}"))

    def _session_id(self) -> str:
        n = next(self._session)
        return "".join(_B64[(n >> (6 * k)) & 63] for k in range(16))

    def _open(self, t: datetime, ip: str, port: int, host: str = "") -> _Session:
        """tcpserver accepts a connection."""
        pid = next(self._pid)
        rport = next(self._port)
        local_ip = "127.0.0.1" if ip == "127.0.0.1" else _LOCAL_IP
        self._smtpd(t, "tcpserver: status: 1/40")
        self._smtpd(t, f"tcpserver: pid {pid} from {ip}")
        self._smtpd(t, f"tcpserver: ok {pid} {_LOCAL}:{local_ip}:{port} {host}:{ip}::{rport}")
        return _Session(ip, rport, port, pid)

    def _close(self, t: datetime, pid: int) -> None:
        self._smtpd(t, f"tcpserver: end {pid} status 0")
        self._smtpd(t, "tcpserver: status: 0/40")

    def _qlog(
        self,
        t: datetime,
        head: str,
        fields: str,
        s: _Session,
        *,
        user: str = "",
        qp: str = "",
        ms: int = 0,
    ) -> None:
        # sagredo-dev/qmail qsmtpdlog(): fixed fields in a fixed order
        auth = f"authuser={user} authtype=login encrypted=tls" if user else "authuser= authtype= encrypted="
        local_ip = "127.0.0.1" if s.ip == "127.0.0.1" else _LOCAL_IP
        self._smtpd(
            t,
            f"{head}: {fields} {auth} sslverified=no localip={local_ip} localport={s.port} "
            f"remoteip={s.ip} remoteport={s.rport} remotehost= qp={qp} pid={s.pid}",
            ms,
        )

    def _smtp_message(
        self,
        t: datetime,
        ip: str,
        sender: str,
        rcpts: list[str],
        *,
        user: str = "",
        port: int = 25,
        host: str = "",
        helo: str = "laptop",
        size: int = 1200,
    ) -> str:
        """One SMTP session that queues one message: the smtpd side and qmail-send's info msg."""
        session = self._open(t, ip, port, host)
        relay = "yes" if user or ip == "127.0.0.1" else "no"
        for rcpt in rcpts:
            rcpthosts = "yes" if rcpt.endswith("@example.com") else "no"
            self._qlog(
                t,
                "qlogenvelope",
                f"result=accepted code=250 reason=rcptto detail=chkuser helo={helo} mailfrom={sender} "
                f"rcptto={rcpt} relay={relay} rcpthosts={rcpthosts} size=",
                session,
                user=user,
            )
        qp = session.pid + 2  # qmail-smtpd forks qmail-queue
        self._qlog(
            t,
            "qlogreceived",
            f"result=accepted code=250 reason=queueaccept detail= helo={helo} mailfrom={sender} "
            f"rcptto={rcpts[0]} relay={relay} rcpthosts= size={size - 300}",
            session,
            user=user,
            qp=str(qp),
            ms=10,
        )
        inode = self._queue(t, sender, size, qp=qp, uid=_QMAILD_UID, ms=20)
        self._close(t + timedelta(milliseconds=30), session.pid)
        return inode

    def _queue(self, t: datetime, sender: str, size: int, *, qp: int, uid: int, ms: int = 0) -> str:
        inode = str(next(self._inode))
        self._send(t, f"new msg {inode}", ms)
        self._send(t, f"info msg {inode}: bytes {size} from <{sender}> qp {qp} uid {uid}", ms)
        return inode

    def _local(self, t: datetime, inode: str, rcpt: str, ms: int) -> None:
        """vpopmail delivery: qmail-local runs vdelivermail from the domain's .qmail-default."""
        number = next(self._delivery)
        domain = rcpt.rpartition("@")[2]
        self._send(t, f"starting delivery {number}: msg {inode} to local {domain}-{rcpt}", ms)
        self._send(t, "status: local 1/10 remote 0/20", ms)
        self._send(t, f"delivery {number}: success: did_0+0+1/", ms + 50)
        self._send(t, "status: local 0/10 remote 0/20", ms + 50)

    def _deliver(self, t: datetime, inode: str, rcpts: list[tuple[str, str]], sender: str) -> None:
        when = t + timedelta(seconds=1)
        numbers = []
        for n, (rcpt, _) in enumerate(rcpts, 1):
            number = next(self._delivery)
            numbers.append(number)
            self._send(t, f"starting delivery {number}: msg {inode} to remote {rcpt}", 40)
            self._send(t, f"status: local 0/10 remote {n}/20", 40)
        for i, ((_, outcome), number) in enumerate(zip(rcpts, numbers, strict=True)):
            verdict, report = _OUTCOMES[outcome]
            self._send(when, f"delivery {number}: {verdict}: {report.format(n=f'{inode}{i}')}")
            self._send(when, f"status: local 0/10 remote {len(rcpts) - i - 1}/20")
        if any(o in ("block", "nouser") for _, o in rcpts):
            # qmail-send queues the bounce itself (as qmails) and names its qp first
            bounce_qp = next(self._qp)
            self._send(when, f"bounce msg {inode} qp {bounce_qp}", 10)
            notice = self._queue(when, "", 3100, qp=bounce_qp, uid=_QMAILS_UID, ms=10)
            if sender.endswith("@example.com"):
                self._local(when, notice, sender, 20)
            else:
                number = next(self._delivery)
                self._send(when, f"starting delivery {number}: msg {notice} to remote {sender}", 20)
                self._send(when, "status: local 0/10 remote 1/20", 20)
                self._send(when, f"delivery {number}: success: {_OUTCOMES['sent'][1].format(n=notice)}", 500)
                self._send(when, "status: local 0/10 remote 0/20", 500)
            self._send(when, f"end msg {notice}", 600)
        if all(o != "rate" for _, o in rcpts):
            self._send(when, f"end msg {inode}", 10)

    # --- the LogWriter interface ----------------------------------------------------------

    def smtp_auth_message(
        self, t: datetime, ip: str, user: str, rcpts: list[tuple[str, str]], sender: str | None = None
    ) -> str:
        envelope = sender or user
        inode = self._smtp_message(t, ip, envelope, [r for r, _ in rcpts], user=user, port=587)
        self._deliver(t, inode, rcpts, envelope)
        return inode

    def smtp_auth_fail(self, t: datetime, ip: str, user: str) -> None:
        session = self._open(t, ip, 587)
        self._qlog(
            t,
            "qlogenvelope",
            "result=rejected code=535 reason=authfailed detail= helo=User mailfrom= rcptto= relay=no "
            "rcpthosts= size=",
            session,
            user=user,
            ms=5,
        )
        self._close(t + timedelta(milliseconds=10), session.pid)

    def unauth_message(self, t: datetime, ip: str, sender: str, rcpts: list[tuple[str, str]]) -> str:
        host = "localhost" if ip == "127.0.0.1" else ""
        inode = self._smtp_message(
            t, ip, sender, [r for r, _ in rcpts], host=host, helo="localhost", size=900
        )
        self._deliver(t, inode, rcpts, sender)
        return inode

    def inbound_message(self, t: datetime, ip: str, sender: str, local_rcpt: str) -> str:
        inode = self._smtp_message(
            t, ip, sender, [local_rcpt], host="mail.example.org", helo="mail.example.org", size=3000
        )
        self._local(t, inode, local_rcpt, 40)
        self._send(t, f"end msg {inode}", 100)
        return inode

    def pickup_message(self, t: datetime, uid: int, script: str, rcpts: list[tuple[str, str]]) -> str:
        # PHP logs the mail() call, then runs sendmail_path: qmail's sendmail wrapper ->
        # qmail-inject -> qmail-queue, as the script's uid; qmail-inject's default sender is
        # user@defaulthost. qmail logs no script path.
        sender = "www-data@mx.example.com"
        utc = t.astimezone(UTC)
        self.php.append(
            (
                t,
                next(self._seq),
                f"[{utc:%d-%b-%Y %H:%M:%S} UTC] mail() on [/var/www/example.com/htdocs/{script}:41]: "
                f"To: {', '.join(r for r, _ in rcpts)} -- Headers: From: webmaster@example.com "
                "X-Mailer: PHP/8.2.7 -- Subject: Contact form",
            )
        )
        inode = self._queue(t, sender, 700, qp=next(self._qp), uid=uid)
        self._deliver(t, inode, rcpts, sender)
        return inode

    def imap_login(self, t: datetime, ip: str, user: str, proto: str = "imap") -> None:
        self._syslog(
            t,
            "dovecot",
            f"{proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={_LOCAL_IP}, "
            f"mpid={next(self._syslog_pid)}, TLS, session=<{self._session_id()}>",
        )

    def imap_fail(self, t: datetime, ip: str, user: str) -> None:
        session = self._session_id()
        self._syslog(t, "dovecot", f"auth: sql({user},{ip},<{session}>): Password mismatch")
        self._syslog(
            t + timedelta(seconds=2),
            "dovecot",
            f"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{user}>, "
            f"method=PLAIN, rip={ip}, lip={_LOCAL_IP}, TLS, session=<{session}>",
        )

    # --- output -----------------------------------------------------------------------------

    @staticmethod
    def _text(lines: list[tuple[datetime, int, str]]) -> str:
        return "".join(line + "\n" for _, _, line in sorted(lines, key=lambda p: (p[0], p[1])))

    def write(self, directory: Path, mtime: float) -> list[Path]:
        """``qmail/current`` (qmail-send), ``qmail/smtpd/current`` (qmail-smtpd), ``maillog``
        (Dovecot) and ``php/mail.log`` (PHP's mail() calls)."""
        send = directory / "qmail" / "current"
        smtpd = directory / "qmail" / "smtpd" / "current"
        maillog = directory / "maillog"
        php = directory / "php" / "mail.log"
        smtpd.parent.mkdir(parents=True, exist_ok=True)
        php.parent.mkdir(parents=True, exist_ok=True)
        files = ((send, self.send), (smtpd, self.smtpd), (maillog, self.maillog), (php, self.php))
        for path, lines in files:
            path.write_text(self._text(lines), encoding="utf-8")
            os.utime(path, (mtime, mtime))
        return [send, smtpd, maillog, php]
