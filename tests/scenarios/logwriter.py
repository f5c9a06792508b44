"""Writes Postfix and Dovecot log lines for scenario timelines.

The shapes are copied from what Postfix 3.7 and Dovecot 2.3 wrote on the lab
stack (``examples/incident``, ``../shared/samples/lab``); scenarios need
timelines spread over hours and days, which a real stack cannot produce in
a test's run time. The real-daemon tests (tests/integration) prove that the
same shapes are what the daemons write.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

REPLIES = {
    "sent": ("2.0.0", "sent", "250 2.0.0 Ok: queued as {n}"),
    "block": (
        "5.7.1",
        "bounced",
        "host mx.example.net[192.0.2.250] said: 554 5.7.1 Service unavailable; "
        "Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1 "
        "(in reply to RCPT TO command)",
    ),
    "rate": (
        "4.7.0",
        "deferred",
        "host mx.example.net[192.0.2.250] said: 421 4.7.0 [192.0.2.1] Our system has "
        "detected an unusual rate of unsolicited mail originating from your IP address. (in reply to RCPT TO command)",
    ),
    "nouser": (
        "5.1.1",
        "bounced",
        "host mx.example.net[192.0.2.250] said: 550 5.1.1 The email account that you "
        "tried to reach does not exist. (in reply to RCPT TO command)",
    ),
}


@dataclass
class LogWriter:
    carries_script: ClassVar[bool] = True  # header_checks INFO on X-PHP-Originating-Script
    start: datetime
    lines: list[str] = field(default_factory=list)
    _qid: itertools.count = field(default_factory=lambda: itertools.count(0x1A2B3C0000))  # type: ignore[type-arg]
    _pid: itertools.count = field(default_factory=lambda: itertools.count(1000))  # type: ignore[type-arg]

    def _ts(self, t: datetime) -> str:
        return (
            t.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
            if t.day < 10
            else t.strftime("%b %d %H:%M:%S")
        )

    def _line(self, t: datetime, prog: str, msg: str) -> None:
        self.lines.append((t, f"{self._ts(t)} mx {prog}[{next(self._pid) % 30000 + 100}]: {msg}"))  # type: ignore[arg-type]

    def qid(self) -> str:
        return f"{next(self._qid):X}"[-11:]

    def _deliver(self, t: datetime, qid: str, rcpts: list[tuple[str, str]]) -> None:
        for i, (rcpt, outcome) in enumerate(rcpts):
            dsn, status, reply = REPLIES[outcome]
            relay = "mx.example.net[192.0.2.250]:25"
            self._line(
                t + timedelta(seconds=1),
                "postfix/smtp",
                f"{qid}: to=<{rcpt}>, relay={relay}, delay=0.5, delays=0.1/0/0.2/0.2, dsn={dsn}, "
                f"status={status} ({reply.format(n=i)})",
            )
        if any(o in ("block", "nouser") for _, o in rcpts):
            nq = self.qid()
            self._line(
                t + timedelta(seconds=2),
                "postfix/bounce",
                f"{qid}: sender non-delivery notification: {nq}",
            )
        if all(o != "rate" for _, o in rcpts):
            self._line(t + timedelta(seconds=2), "postfix/qmgr", f"{qid}: removed")

    def smtp_auth_message(
        self,
        t: datetime,
        ip: str,
        user: str,
        rcpts: list[tuple[str, str]],
        sender: str | None = None,
    ) -> str:
        qid = self.qid()
        self._line(t, "postfix/submission/smtpd", f"connect from unknown[{ip}]")
        self._line(
            t,
            "postfix/submission/smtpd",
            f"{qid}: client=unknown[{ip}], sasl_method=PLAIN, sasl_username={user}",
        )
        self._line(t, "postfix/cleanup", f"{qid}: message-id=<{qid}@example.com>")
        self._line(
            t,
            "postfix/qmgr",
            f"{qid}: from=<{sender or user}>, size=1200, nrcpt={len(rcpts)} (queue active)",
        )
        self._line(
            t,
            "postfix/submission/smtpd",
            f"disconnect from unknown[{ip}] ehlo=1 auth=1 mail=1 rcpt={len(rcpts)} data=1 quit=1 commands=6",
        )
        self._deliver(t, qid, rcpts)
        return qid

    def unauth_message(self, t: datetime, ip: str, sender: str, rcpts: list[tuple[str, str]]) -> str:
        qid = self.qid()
        self._line(t, "postfix/smtpd", f"connect from unknown[{ip}]")
        self._line(t, "postfix/smtpd", f"{qid}: client=unknown[{ip}]")
        self._line(t, "postfix/cleanup", f"{qid}: message-id=<{qid}@mx.example.com>")
        self._line(
            t,
            "postfix/qmgr",
            f"{qid}: from=<{sender}>, size=900, nrcpt={len(rcpts)} (queue active)",
        )
        self._line(
            t,
            "postfix/smtpd",
            f"disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
        )
        self._deliver(t, qid, rcpts)
        return qid

    def inbound_message(self, t: datetime, ip: str, sender: str, local_rcpt: str) -> str:
        qid = self.qid()
        self._line(t, "postfix/smtpd", f"connect from mail.example.org[{ip}]")
        self._line(t, "postfix/smtpd", f"{qid}: client=mail.example.org[{ip}]")
        self._line(t, "postfix/qmgr", f"{qid}: from=<{sender}>, size=3000, nrcpt=1 (queue active)")
        self._line(
            t,
            "postfix/virtual",
            f"{qid}: to=<{local_rcpt}>, relay=virtual, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to maildir)",
        )
        self._line(t, "postfix/qmgr", f"{qid}: removed")
        return qid

    def pickup_message(self, t: datetime, uid: int, script: str, rcpts: list[tuple[str, str]]) -> str:
        qid = self.qid()
        self._line(t, "postfix/pickup", f"{qid}: uid={uid} from=<www-data>")
        if script:
            self._line(
                t,
                "postfix/cleanup",
                f"{qid}: info: header X-PHP-Originating-Script: {uid}:{script} from local; from=<www-data@example.com>",
            )
        self._line(t, "postfix/cleanup", f"{qid}: message-id=<{qid}@mx.example.com>")
        self._line(
            t,
            "postfix/qmgr",
            f"{qid}: from=<www-data@example.com>, size=700, nrcpt={len(rcpts)} (queue active)",
        )
        self._deliver(t, qid, rcpts)
        return qid

    def smtp_auth_fail(self, t: datetime, ip: str, user: str) -> None:
        self._line(t, "postfix/submission/smtpd", f"connect from unknown[{ip}]")
        self.lines.append((t, f"{self._ts(t)} mx dovecot: auth: passwd-file({user},{ip}): Password mismatch"))  # type: ignore[arg-type]
        self._line(
            t,
            "postfix/submission/smtpd",
            f"warning: unknown[{ip}]: SASL LOGIN authentication failed: (reason unavailable), sasl_username={user}",
        )
        self._line(
            t,
            "postfix/submission/smtpd",
            f"disconnect from unknown[{ip}] ehlo=1 auth=0/1 quit=1 commands=2/3",
        )

    def imap_login(self, t: datetime, ip: str, user: str, proto: str = "imap") -> None:
        self.lines.append(
            (
                t,
                f"{self._ts(t)} mx dovecot: {proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip=192.0.2.1, mpid=4242, TLS, session=<AbCdEf{next(self._pid)}>",
            )
        )  # type: ignore[arg-type]

    def imap_fail(self, t: datetime, ip: str, user: str) -> None:
        self.lines.append((t, f"{self._ts(t)} mx dovecot: auth: passwd-file({user},{ip}): Password mismatch"))  # type: ignore[arg-type]
        self.lines.append(
            (
                t,
                f"{self._ts(t)} mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, rip={ip}, lip=192.0.2.1, TLS, session=<XyZ{next(self._pid)}>",
            )
        )  # type: ignore[arg-type]

    def write(self, directory: Path, mtime: float) -> list[Path]:
        """Postfix and Dovecot both log to syslog's mail.log, as on Debian."""
        log = directory / "mail.log"
        log.write_text(self.text(), encoding="utf-8")
        os.utime(log, (mtime, mtime))
        return [log]

    def text(self) -> str:
        ordered = sorted(self.lines, key=lambda p: p[0])  # type: ignore[arg-type, return-value]
        return "".join(line + "\n" for _, line in ordered)  # type: ignore[misc]
