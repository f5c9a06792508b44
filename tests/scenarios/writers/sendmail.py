"""Writes Sendmail 8 (and Dovecot) syslog lines for the scenario timelines.

Same methods and meaning as ``tests/scenarios/logwriter.LogWriter`` (the Postfix
writer); the shapes are those of ``tests/golden/sendmail`` (from the Sendmail
8.17 source and public test corpora, see ``docs/formats/sendmail.md``). IMAP and
POP3 lines are Dovecot's, written to the same file as on RHEL (``/var/log/maillog``).

* SMTP AUTH: ``AUTH=server`` (no queue id, same pid as the message), then
  ``from=... proto=ESMTPA, daemon=MSA``.
* A web script: the submission program (``sendmail``, ``relay=www-data@localhost``)
  hands the message to the MTA over 127.0.0.1 (``mailer=relay``, ``ctladdr=www-data
  (33/33)``, ``stat=Sent (<id> Message accepted for delivery)``). Sendmail logs no
  header, so the script name (``script``) cannot be carried.
* Remote failures: 8.17's ``reply=`` field carries the remote reply; a bounce
  is followed by ``<id>: <dsn id>: DSN: ...``.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta
from pathlib import Path

from tests.scenarios.logwriter import LogWriter

_MX = "mx.example.net. [192.0.2.250]"
_BLOCK = (
    "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; "
    "https://www.spamhaus.org/query/ip/192.0.2.1"
)
_RATE = (
    "421 4.7.0 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail "
    "originating from your IP address."
)
_NOUSER = "550 5.1.1 The email account that you tried to reach does not exist."
# outcome -> dsn, reply= field (8.17), stat=
OUTCOMES = {
    "sent": ("2.0.0", "", "Sent (ok {n})"),
    "block": ("5.7.1", _BLOCK, "Service unavailable"),
    "rate": ("4.7.0", _RATE, "Deferred: " + _RATE),
    "nouser": ("5.1.1", _NOUSER, "User unknown"),
}
_USERS = {0: "root", 33: "www-data", 48: "apache"}


class SendmailWriter:
    """Scenario lines for a Sendmail 8.17 box with Dovecot."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.lines: list[tuple[datetime, str]] = []
        self._qid = itertools.count(1)
        self._pid = itertools.count(4000)
        self._dovecot = LogWriter(start, lines=self.lines)  # type: ignore[arg-type]

    # --- helpers ------------------------------------------------------------------

    def _ts(self, t: datetime) -> str:
        return self._dovecot._ts(t)

    def _line(self, t: datetime, prog: str, pid: int, msg: str) -> None:
        self.lines.append((t, f"{self._ts(t)} mx {prog}[{pid}]: {msg}"))

    def qid(self) -> str:
        return f"4AR{next(self._qid):011d}"

    def pid(self) -> int:
        return next(self._pid) % 60000 + 1000

    def _deliver(self, t: datetime, qid: str, sender: str, rcpts: list[tuple[str, str]]) -> None:
        pid = self.pid()
        t1 = t + timedelta(seconds=1)
        bounce = ""
        for n, (rcpt, outcome) in enumerate(rcpts):
            dsn, reply, stat = OUTCOMES[outcome]
            reply_field = f", reply={reply}" if reply else ""
            self._line(
                t1,
                "sm-mta",
                pid,
                f"{qid}: to=<{rcpt}>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=121200, "
                f"relay={_MX}, dsn={dsn}{reply_field}, stat={stat.format(n=n)}",
            )
            if dsn.startswith("5."):
                bounce = bounce or stat
        if bounce:
            self._line(t1, "sm-mta", pid, f"{qid}: {self.qid()}: DSN: {bounce}")

    def _from(
        self, t: datetime, pid: int, qid: str, *, sender: str, n: int, proto: str, daemon: str, relay: str
    ) -> None:
        self._line(
            t,
            "sm-mta",
            pid,
            f"{qid}: from=<{sender}>, size=1200, class=0, nrcpts={n}, msgid=<{qid}@example.com>, "
            f"proto={proto}, daemon={daemon}, relay={relay}",
        )

    # --- the LogWriter interface ----------------------------------------------------

    def imap_login(self, t: datetime, ip: str, user: str, proto: str = "imap") -> None:
        self._dovecot.imap_login(t, ip, user, proto)

    def imap_fail(self, t: datetime, ip: str, user: str) -> None:
        self._dovecot.imap_fail(t, ip, user)

    def smtp_auth_message(
        self, t: datetime, ip: str, user: str, rcpts: list[tuple[str, str]], sender: str | None = None
    ) -> str:
        qid, pid = self.qid(), self.pid()
        self._line(t, "sm-mta", pid, f"AUTH=server, relay=[{ip}], authid={user}, mech=PLAIN, bits=0")
        self._from(
            t, pid, qid, sender=sender or user, n=len(rcpts), proto="ESMTPSA", daemon="MSA", relay=f"[{ip}]"
        )
        self._deliver(t, qid, sender or user, rcpts)
        return qid

    def smtp_auth_fail(self, t: datetime, ip: str, user: str) -> None:
        self._line(
            t,
            "sm-mta",
            self.pid(),
            f"{self.qid()}: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): "
            f"authentication failure: checkpass failed, user={user}, relay=[{ip}]",
        )

    def unauth_message(self, t: datetime, ip: str, sender: str, rcpts: list[tuple[str, str]]) -> str:
        qid, pid = self.qid(), self.pid()
        relay = "localhost [127.0.0.1]" if ip == "127.0.0.1" else f"[{ip}]"
        self._from(t, pid, qid, sender=sender, n=len(rcpts), proto="ESMTP", daemon="MTA-v4", relay=relay)
        self._deliver(t, qid, sender, rcpts)
        return qid

    def inbound_message(self, t: datetime, ip: str, sender: str, local_rcpt: str) -> str:
        qid, pid = self.qid(), self.pid()
        self._from(
            t, pid, qid, sender=sender, n=1, proto="ESMTP", daemon="MTA-v4", relay=f"mail.example.org [{ip}]"
        )
        self._line(
            t,
            "sm-mta",
            self.pid(),
            f"{qid}: to=<{local_rcpt}>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=31200, "
            "dsn=2.0.0, stat=Sent",
        )
        return qid

    def pickup_message(self, t: datetime, uid: int, script: str, rcpts: list[tuple[str, str]]) -> str:
        user = _USERS.get(uid, f"u{uid}")
        msp_qid, msp_pid = self.qid(), self.pid()
        qid = self.qid()
        to = ",".join(r for r, _ in rcpts)
        self._line(
            t,
            "sendmail",
            msp_pid,
            f"{msp_qid}: from={user}, size=512, class=0, nrcpts={len(rcpts)}, "
            f"msgid=<{msp_qid}@mx.example.com>, relay={user}@localhost",
        )
        self._from(
            t,
            self.pid(),
            qid,
            sender=f"{user}@mx.example.com",
            n=len(rcpts),
            proto="ESMTP",
            daemon="MTA-v4",
            relay="localhost [127.0.0.1]",
        )
        self._line(
            t,
            "sendmail",
            msp_pid,
            f"{msp_qid}: to={to}, ctladdr={user} ({uid}/{uid}), delay=00:00:00, xdelay=00:00:00, "
            f"mailer=relay, pri=30512, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, "
            f"stat=Sent ({qid} Message accepted for delivery)",
        )
        self._deliver(t, qid, f"{user}@mx.example.com", rcpts)
        return qid

    def text(self) -> str:
        ordered = sorted(self.lines, key=lambda p: p[0])
        return "".join(line + "\n" for _, line in ordered)

    def write(self, directory: Path, mtime: float) -> list[Path]:
        path = directory / "maillog"
        path.write_text(self.text(), encoding="utf-8")
        os.utime(path, (mtime, mtime))
        return [path]
