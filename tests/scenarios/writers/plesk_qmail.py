"""Writes a Plesk + qmail + Courier-IMAP ``maillog`` for scenario timelines.

Same methods and semantics as ``tests/scenarios/logwriter.LogWriter`` (the
Postfix one). The shapes are those of ``tests/golden/plesk/maillog.log``
(relaylock, smtp_auth, qmail through splogger) and ``tests/golden/qmail``
(qmail-send's delivery reports), and Courier-IMAP's ``LOGIN`` / ``LOGIN
FAILED`` lines of ``tests/golden/courier/imap.log``: the classic Plesk 8-11
box, everything in ``/usr/local/psa/var/log/maillog``.

qmail logs no script path, so ``carries_script`` is False. The uids are
illustrative: 2020 stands for the uid qmail-smtpd queues as (qmaild; the
parser learns it from the SMTP sessions), 2021 for qmails (bounces).
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta
from pathlib import Path

_MX = "192.0.2.250"
_QMAILD_UID = 2020
_QMAILS_UID = 2021
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


class PleskQmailLogWriter:
    """Collects (time, line) and writes one syslog ``maillog`` in time order."""

    carries_script = False

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.lines: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._inode = itertools.count(2_996_948)
        self._pid = itertools.count(19_000)
        self._delivery = itertools.count(1)
        self._port = itertools.count(40_000)

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _stamp(t: datetime) -> str:
        return f"{t:%b} {t.day:2d} {t:%H:%M:%S}"

    def _add(self, t: datetime, tag: str, msg: str) -> None:
        self.lines.append((t, next(self._seq), f"{self._stamp(t)} web {tag}: {msg}"))

    def _qmail(self, t: datetime, msg: str) -> None:
        # splogger: "qmail: <unix stamp> <qmail-send line>"
        self._add(t, "qmail", f"{t.astimezone().timestamp():.6f} {msg}")

    def _connect(self, t: datetime, ip: str) -> None:
        self._add(t, "relaylock", f"/var/qmail/bin/relaylock: mail from {ip}:{next(self._port)} (unknown)")

    def _queue(self, t: datetime, sender: str, size: int, uid: int) -> tuple[str, int]:
        inode = str(next(self._inode))
        qp = next(self._pid)
        self._qmail(t, f"new msg {inode}")
        self._qmail(t, f"info msg {inode}: bytes {size} from <{sender}> qp {qp} uid {uid}")
        return inode, qp

    def _deliver(self, t: datetime, inode: str, rcpts: list[tuple[str, str]], sender: str) -> None:
        when = t + timedelta(seconds=1)
        for i, (rcpt, outcome) in enumerate(rcpts):
            number = next(self._delivery)
            verdict, report = _OUTCOMES[outcome]
            self._qmail(t, f"starting delivery {number}: msg {inode} to remote {rcpt}")
            self._qmail(when, f"delivery {number}: {verdict}: {report.format(n=f'{inode}{i}')}")
        if any(o in ("block", "nouser") for _, o in rcpts):
            bounce_qp = next(self._pid)
            self._qmail(when, f"bounce msg {inode} qp {bounce_qp}")
            notice = str(next(self._inode))
            self._qmail(when, f"new msg {notice}")
            self._qmail(when, f"info msg {notice}: bytes 3100 from <> qp {bounce_qp} uid {_QMAILS_UID}")
            number = next(self._delivery)
            self._qmail(when, f"starting delivery {number}: msg {notice} to local example.com-{sender}")
            self._qmail(when, f"delivery {number}: success: did_0+0+1/")
            self._qmail(when, f"end msg {notice}")
        if all(o != "rate" for _, o in rcpts):
            self._qmail(when, f"end msg {inode}")

    # --- the LogWriter interface ----------------------------------------------------------

    def smtp_auth_message(
        self, t: datetime, ip: str, user: str, rcpts: list[tuple[str, str]], sender: str | None = None
    ) -> str:
        self._connect(t, ip)
        self._add(t, "smtp_auth", f"SMTP user {user} : logged in from unknown [{ip}]")
        inode, _ = self._queue(t, sender or user, 1200, _QMAILD_UID)
        self._deliver(t, inode, rcpts, sender or user)
        return inode

    def smtp_auth_fail(self, t: datetime, ip: str, user: str) -> None:
        self._connect(t, ip)
        self._add(t, "smtp_auth", f"smtp_auth: FAILED: {user} - password incorrect  from unknown@ [{ip}]")

    def unauth_message(self, t: datetime, ip: str, sender: str, rcpts: list[tuple[str, str]]) -> str:
        self._connect(t, ip)
        inode, _ = self._queue(t, sender, 900, _QMAILD_UID)
        self._deliver(t, inode, rcpts, sender)
        return inode

    def inbound_message(self, t: datetime, ip: str, sender: str, local_rcpt: str) -> str:
        self._connect(t, ip)
        inode, _ = self._queue(t, sender, 3000, _QMAILD_UID)
        number = next(self._delivery)
        self._qmail(t, f"starting delivery {number}: msg {inode} to local example.com-{local_rcpt}")
        self._qmail(t, f"delivery {number}: success: did_0+0+1/")
        self._qmail(t, f"end msg {inode}")
        return inode

    def pickup_message(self, t: datetime, uid: int, script: str, rcpts: list[tuple[str, str]]) -> str:
        # qmail-inject (PHP's sendmail_path) queues as the script's uid; qmail logs no script path.
        inode, _ = self._queue(t, "anonymous@web.example.com", 700, uid)
        self._deliver(t, inode, rcpts, "anonymous@web.example.com")
        return inode

    def imap_login(self, t: datetime, ip: str, user: str, proto: str = "imap") -> None:
        daemon, protocol = ("pop3d", "POP3") if proto == "pop3" else ("imapd", "IMAP")
        self._add(
            t,
            daemon,
            f"LOGIN, user={user}, ip=[::ffff:{ip}], port=[{next(self._port)}], protocol={protocol}",
        )

    def imap_fail(self, t: datetime, ip: str, user: str) -> None:
        self._add(t, "imapd", f"LOGIN FAILED, user={user}, ip=[::ffff:{ip}]")

    # --- output -----------------------------------------------------------------------------

    def text(self) -> str:
        return "".join(line + "\n" for _, _, line in sorted(self.lines, key=lambda p: (p[0], p[1])))

    def write(self, directory: Path, mtime: float) -> list[Path]:
        path = directory / "maillog"
        path.write_text(self.text(), encoding="utf-8")
        os.utime(path, (mtime, mtime))
        return [path]
