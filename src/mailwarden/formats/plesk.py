"""Plesk's own mail programs → typed events.

Plesk ran qmail (with its own ``smtp_auth`` checkpassword, ``relaylock``
wrapper and ``qmail-queue-handlers``) up to Plesk 11.5, and runs Postfix
with ``plesk_saslauthd`` since. Both write to ``/usr/local/psa/var/log/maillog``
(syslog).

The qmail-side programs (``smtp_auth``, ``relaylock``, ``qmail-queue-handlers``,
``qmail-local-handlers``) are read by the qmail format, because the account
and client they name must be joined with qmail-send's ``info msg`` line of the
same stream (``formats/qmail.py``); their line readers live here. This format
claims the programs of Plesk on Postfix. See ``docs/formats/plesk.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats._qmail_fields import ip
from mailwarden.formats.base import Handler
from mailwarden.model import AuthFailed, AuthSucceeded, Connect, Event, Record

NOTHING: tuple[Event, ...] = ()
_PROGRAMS = frozenset({"plesk_saslauthd", "psa-pc-remote"})
QMAIL_SIDE = frozenset({"smtp_auth", "relaylock", "qmail-queue-handlers", "qmail-local-handlers"})
_SASL_FAILED = "failed mail authenticatication attempt for user '"  # sic: Plesk's spelling
_SASL_QUIET = ("select timeout", "privileges set to", "server started", "server stopped")
# qmail-queue-handlers: the before-queue filter's trace; none names a client or a verdict we use.
_HANDLERS_QUIET = (
    "possibly qmail-smtpd exited by timeout",
    "from=",
    "to=",
    "hook_dir",
    "recipient[",
    "handlers dir",
    "handlers_stderr",
    "starter:",
    "Handlers Filter",
    "call_handlers",
)


def trailing_client(msg: str) -> str | None:
    """The ``[addr]`` that ends a smtp_auth line: written by the server after every typed field."""
    if not msg.endswith("]"):
        return None
    start = msg.rfind("[", max(0, len(msg) - 70))
    return ip(msg[start + 1 : -1]) if start >= 0 else None


def read_smtp_auth(record: Record, msg: str) -> tuple[list[Event], str | None] | None:
    """``smtp_auth`` lines → events and, for a login, the account name (for the message link).

    Shapes (Plesk 7.5-11.5): ``SMTP connect from unknown@ [ip]``,
    ``SMTP user U : /var/qmail/mailnames/D/U logged in from unknown@ [ip]``,
    ``SMTP user U : logged in from host [ip]``,
    ``FAILED: U - password incorrect  from unknown@ [ip]``; older builds repeat
    ``smtp_auth: `` at the start of the message.
    """
    if msg.startswith("smtp_auth: "):
        msg = msg[11:]
    ts, src, host = record.ts, record.source, record.host
    if msg.startswith("SMTP connect from "):
        # The AUTH exchange starting; relaylock already logged the connection.
        return ([], None) if trailing_client(msg) is not None else None
    if msg.startswith("SMTP user "):
        sep = msg.find(" : ", 10)
        if sep < 0 or " logged in from " not in msg[sep:]:
            return None
        user = msg[10:sep]
        client = trailing_client(msg)
        event = AuthSucceeded(ts=ts, source=src, host=host, service="smtp", user=user, client=client)
        return [event], user
    if msg.startswith("FAILED: "):
        client = trailing_client(msg)
        end = msg.rfind(" from ")
        dash = msg.rfind(" - ", 8, end if end > 0 else len(msg))
        if end < 0 or dash < 0:
            return None
        reason = msg[dash + 3 : end].strip()
        failed = AuthFailed(
            ts=ts, source=src, host=host, service="smtp", client=client, user=msg[8:dash], reason=reason
        )
        return [failed], None
    return None


def read_relaylock(record: Record, msg: str) -> tuple[list[Event], str | None] | None:
    """``/var/qmail/bin/relaylock: mail from 192.0.2.7:17249 (name)``: one SMTP connection."""
    pos = msg.find(": mail from ")
    if pos < 0:
        return None
    addr, _, name = msg[pos + 12 :].partition(" ")
    host_part, colon, port = addr.rpartition(":")
    client = ip(host_part) if colon and port.isdigit() else None
    if client is None:
        return None
    client_name = name[1:-1] if name.startswith("(") and name.endswith(")") else ""
    event = Connect(
        ts=record.ts,
        source=record.source,
        host=record.host,
        service="smtp",
        client=client,
        client_name=client_name,
    )
    return [event], client


def read_handlers(record: Record, msg: str) -> Sequence[Event] | None:
    """qmail-queue-handlers / qmail-local-handlers: the filter's trace, nothing to report."""
    if record.program == "qmail-local-handlers" or msg.startswith(_HANDLERS_QUIET):
        return NOTHING
    return None


def _saslauthd(record: Record, msg: str, label: str) -> Sequence[Event] | None:
    """``failed mail authenticatication attempt for user 'U' (password len=N)``: the Postfix SASL backend."""
    if msg.startswith(_SASL_FAILED):
        end = msg.rfind("' (password len=")
        if end < len(_SASL_FAILED):
            end = msg.rfind("'")
        if end < len(_SASL_FAILED):
            return None
        return [
            AuthFailed(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service="smtp",
                client=None,
                user=msg[len(_SASL_FAILED) : end],
                reason="authentication failed",
                layer="backend",
            )
        ]
    if msg.startswith(_SASL_QUIET):
        return NOTHING
    return None


def _unparsed(record: Record, msg: str, label: str) -> Sequence[Event] | None:
    return None


class PleskFormat:
    """Plesk on Postfix: ``plesk_saslauthd`` (and ``psa-pc-remote``, not read yet)."""

    name = "plesk"

    def claims(self, program: str) -> bool:
        return program in _PROGRAMS

    def route(self, program: str) -> tuple[Handler, str] | None:
        if program == "plesk_saslauthd":
            return _saslauthd, ""
        if program in _PROGRAMS:
            return _unparsed, ""
        return None

    def parse(self, record: Record) -> Sequence[Event] | None:
        route = self.route(record.program)
        return None if route is None else route[0](record, record.message, route[1])


__all__ = ["QMAIL_SIDE", "PleskFormat", "read_handlers", "read_relaylock", "read_smtp_auth"]
