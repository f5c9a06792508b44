"""Courier MTA and Courier-IMAP → typed events. (Being written: every line is unparsed until then.)"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.model import Event, Record

_PROGRAMS = frozenset({"courieresmtpd", "courierd", "courierlocal", "courieresmtp", "imapd", "imapd-ssl", "pop3d", "pop3d-ssl", "authdaemond"})


class CourierFormat:
    name = "courier"

    def claims(self, program: str) -> bool:
        return program.partition("/")[0] in _PROGRAMS

    def parse(self, record: Record) -> Sequence[Event] | None:
        return None


__all__ = ["CourierFormat"]
