"""qmail (netqmail and patch sets), tcpserver, rblsmtpd, vpopmail → typed events. (Being written: every line is unparsed until then.)"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.model import Event, Record

_PROGRAMS = frozenset({"qmail", "qmail-send", "qmail-smtpd", "qmail-remote", "qmail-inject", "tcpserver", "rblsmtpd", "vchkpw-smtp", "vchkpw-pop3", "vchkpw-imap", "vchkpw-submission"})


class QmailFormat:
    name = "qmail"

    def claims(self, program: str) -> bool:
        return program.partition("/")[0] in _PROGRAMS

    def parse(self, record: Record) -> Sequence[Event] | None:
        return None


__all__ = ["QmailFormat"]
