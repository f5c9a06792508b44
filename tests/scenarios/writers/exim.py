"""Writes Exim 4 mainlog lines (and the Dovecot lines beside them) for scenario timelines.

Same methods and semantics as ``tests/scenarios/logwriter.LogWriter`` (the
Postfix one). The shapes are those of ``tests/golden/exim`` (Exim's own test
suite logs, fail2ban's exim samples, cPanel's published mainlog excerpts):
Exim's own ``mainlog`` (Debian's ``/var/log/exim4/mainlog`` format, 4.96
message ids), and IMAP/POP3 through Dovecot, which on Debian and cPanel
Exim boxes logs to syslog (``maillog``). Exim's ``dovecot`` authenticator
asks Dovecot's auth process, which logs the password mismatch as well.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta
from pathlib import Path

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MX = "mx.example.net [192.0.2.250]"
_TLS = "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no"
# rcpt outcome -> (mainlog flag, text after the recipient's fields)
_OUTCOMES = {
    "sent": ("=>", f'R=dnslookup T=remote_smtp H={_MX} {_TLS} C="250 2.0.0 Ok: queued as {{n}}"'),
    "block": (
        "**",
        f"R=dnslookup T=remote_smtp H={_MX} : SMTP error from remote mail server after RCPT TO:<{{rcpt}}>: "
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; "
        "https://www.spamhaus.org/query/ip/192.0.2.1",
    ),
    "rate": (
        "==",
        f"R=dnslookup T=remote_smtp defer (-44) H={_MX}: SMTP error from remote mail server after "
        "RCPT TO:<{rcpt}>: 421 4.7.0 [192.0.2.1] Our system has detected an unusual rate of "
        "unsolicited mail originating from your IP address.",
    ),
    "nouser": (
        "**",
        f"R=dnslookup T=remote_smtp H={_MX} : SMTP error from remote mail server after RCPT TO:<{{rcpt}}>: "
        "550 5.1.1 The email account that you tried to reach does not exist.",
    ),
}
_LOGINS = {0: "root", 33: "www-data", 48: "apache"}


def _b62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        out.append(_B62[digit])
    return "".join(reversed(out))


class EximLogWriter:
    """Collects (time, file, line) and writes ``mainlog`` and ``maillog`` in time order."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.lines: list[tuple[datetime, str, str]] = []
        self._seq = itertools.count(1)
        self._port = itertools.count(40000)
        self._session = itertools.count(1000)

    # --- plumbing -----------------------------------------------------------------

    def _id(self, t: datetime) -> str:
        """A 4.96 message id: base-62 time, pid and fraction (unique through the sequence)."""
        n = next(self._seq)
        return f"{_b62(int(t.timestamp()), 6)}-{_b62(1000 + n, 6)}-{_b62(n % 3844, 2)}"

    def _main(self, t: datetime, text: str) -> None:
        self.lines.append((t, "mainlog", f"{t:%Y-%m-%d %H:%M:%S} {text}"))

    def _dovecot(self, t: datetime, text: str) -> None:
        stamp = f"{t:%b} {t.day:2d} {t:%H:%M:%S}"
        self.lines.append((t, "maillog", f"{stamp} mx dovecot: {text}"))

    def _deliver(self, t: datetime, qid: str, sender: str, rcpts: list[tuple[str, str]]) -> None:
        td = t + timedelta(seconds=1)
        for i, (rcpt, outcome) in enumerate(rcpts):
            flag, tail = _OUTCOMES[outcome]
            self._main(td, f"{qid} {flag} {rcpt} {tail.format(n=i, rcpt=rcpt)}")
        if any(o in ("block", "nouser") for _, o in rcpts):
            nid = self._id(td)
            self._main(
                td,
                f'{nid} <= <> R={qid} U=Debian-exim P=local S=2400 T="Mail delivery failed: returning '
                f'message to sender" for {sender}',
            )
            self._main(td + timedelta(seconds=1), f"{nid} => {sender} R=dnslookup T=remote_smtp H={_MX} {_TLS} "
                       'C="250 2.0.0 Ok: queued as 1"')  # fmt: skip
            self._main(td + timedelta(seconds=1), f"{nid} Completed")
        if all(o != "rate" for _, o in rcpts):
            self._main(td + timedelta(seconds=1), f"{qid} Completed")

    @staticmethod
    def _for(rcpts: list[tuple[str, str]]) -> str:
        return " ".join(r for r, _ in rcpts)

    # --- the LogWriter interface --------------------------------------------------

    def imap_login(self, t: datetime, ip: str, user: str, proto: str = "imap") -> None:
        self._dovecot(
            t,
            f"{proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip=192.0.2.1, mpid=4242, TLS, "
            f"session=<AbCdEf{next(self._session)}>",
        )

    def imap_fail(self, t: datetime, ip: str, user: str) -> None:
        self._dovecot(t, f"auth: passwd-file({user},{ip}): Password mismatch")
        self._dovecot(
            t,
            f"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, "
            f"rip={ip}, lip=192.0.2.1, TLS, session=<XyZ{next(self._session)}>",
        )

    def smtp_auth_message(
        self, t: datetime, ip: str, user: str, rcpts: list[tuple[str, str]], sender: str | None = None
    ) -> str:
        qid = self._id(t)
        frm = sender or user
        self._main(
            t,
            f"{qid} <= {frm} H=(client.example.org) [{ip}]:{next(self._port)} I=[192.0.2.1]:587 P=esmtpsa "
            f"{_TLS} A=dovecot_login:{user} S=1200 id={qid}@example.com for {self._for(rcpts)}",
        )
        self._deliver(t, qid, frm, rcpts)
        return qid

    def smtp_auth_fail(self, t: datetime, ip: str, user: str) -> None:
        self._dovecot(t, f"auth: passwd-file({user},{ip}): Password mismatch")
        self._main(
            t,
            f"dovecot_login authenticator failed for (client.example.org) [{ip}]:{next(self._port)} "
            f"I=[192.0.2.1]:587: 535 Incorrect authentication data (set_id={user})",
        )

    def unauth_message(self, t: datetime, ip: str, sender: str, rcpts: list[tuple[str, str]]) -> str:
        qid = self._id(t)
        host = f"localhost [{ip}]" if ip.startswith("127.") else f"(client.example.org) [{ip}]"
        self._main(
            t, f"{qid} <= {sender} H={host}:{next(self._port)} P=esmtp S=900 id={qid}@mx.example.com "
            f"for {self._for(rcpts)}"
        )  # fmt: skip
        self._deliver(t, qid, sender, rcpts)
        return qid

    def inbound_message(self, t: datetime, ip: str, sender: str, local_rcpt: str) -> str:
        qid = self._id(t)
        self._main(
            t,
            f"{qid} <= {sender} H=mail.example.org [{ip}]:{next(self._port)} P=esmtps {_TLS} S=3000 "
            f"id={qid}@example.org for {local_rcpt}",
        )
        local = local_rcpt.partition("@")[0]
        self._main(t, f"{qid} => {local} <{local_rcpt}> R=local_user T=mail_spool")
        self._main(t, f"{qid} Completed")
        return qid

    def pickup_message(self, t: datetime, uid: int, script: str, rcpts: list[tuple[str, str]]) -> str:
        """Exim logs the caller's login name (U=), not the uid, and no script name by default."""
        qid = self._id(t)
        login = _LOGINS.get(uid, f"u{uid}")
        sender = f"{login}@mx.example.com"
        self._main(
            t, f"{qid} <= {sender} U={login} P=local S=700 id={qid}@mx.example.com for {self._for(rcpts)}"
        )
        self._deliver(t, qid, sender, rcpts)
        return qid

    def write(self, directory: Path, mtime: float) -> list[Path]:
        """``mainlog`` (Exim's own file) and ``maillog`` (Dovecot via syslog), time-ordered."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in ("mainlog", "maillog"):
            ordered = sorted((p for p in self.lines if p[1] == name), key=lambda p: p[0])
            path = directory / name
            path.write_text("".join(line + "\n" for _, _, line in ordered), encoding="utf-8")
            os.utime(path, (mtime, mtime))
            paths.append(path)
        return paths

    def text(self) -> str:
        """Both files' lines in one stream (for quick looks; ``write`` is what tests use)."""
        ordered = sorted(self.lines, key=lambda p: p[0])
        return "".join(line + "\n" for _, _, line in ordered)


LogWriter = EximLogWriter

__all__ = ["EximLogWriter", "LogWriter"]
