"""Plesk's own mail programs (smtp_auth, qmail-queue-handlers, plesk_saslauthd) → typed events. (Being written: every line is unparsed until then.)"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.model import Event, Record

_PROGRAMS = frozenset({"smtp_auth", "qmail-queue-handlers", "plesk_saslauthd", "psa-pc-remote"})


class PleskFormat:
    name = "plesk"

    def claims(self, program: str) -> bool:
        return program.partition("/")[0] in _PROGRAMS

    def parse(self, record: Record) -> Sequence[Event] | None:
        return None


__all__ = ["PleskFormat"]
