"""Cyrus saslauthd (cyrus-sasl 2.1) syslog lines → typed events.

saslauthd checks passwords for Sendmail, Postfix (``pwcheck_method:
saslauthd``) and Cyrus IMAP over a local socket. It never sees the network
client, so its events have ``client=None`` and ``layer="backend"``: they count
towards per-account detectors (the MTA's own front-end line carries the
address and is the one per-address detectors use). Its verdicts::

    do_auth         : auth failure: [user=bob] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]
    do_auth         : auth success: [user=bob] [service=smtp] [realm=] [mech=pam]      (with -V only)
    do_auth         : auth success (cached): [user=bob] [service=smtp] [realm=]         (with -V only)

``user`` and ``realm`` are what the client typed (unescaped); ``service``
is the calling program's service name and ``mech`` saslauthd's back end.
See ``docs/formats/saslauthd.md``; ``tests/golden/saslauthd`` is the spec.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailwarden.formats.base import Handler
from mailwarden.model import AuthFailed, AuthSucceeded, Event, Record

__all__ = ["SaslauthdFormat"]

_PROGRAMS = frozenset({"saslauthd"})
_NOTHING: tuple[Event, ...] = ()
_SERVICES = {"pop": "pop3", "pop3": "pop3", "imap": "imap", "sieve": "managesieve", "smtp": "smtp"}
# The first "] [service=NAME] [realm=" after the user: NAME is the server's, without blanks.
_SERVICE = re.compile(r"\] \[service=([^\s\[\]]{0,64})\] \[realm=", re.ASCII)
_MECH = re.compile(r"\] \[mech=([^\s\[\]]{1,32})\](?: \[reason=([^\[\]]{0,200})\])?$", re.ASCII)
# Start-up, worker and cache bookkeeping, the debug trail of a check, and PAM modules'
# own lines (the do_auth verdict says the same once).
_QUIET = (
    "do_request", "cache_", "get_accept_lock", "rel_accept_lock", "have_baby", "detach_tty",
    "ipc_init", "master_pid", "server_exit", "Caught signal", "START:", "MECHANISMS:",
    "mechanism", "DEBUG: ", "PAM ", "pam_", "(pam_unix)", "auth_pam: ", "auth_krb5: ",
    "auth_rimap: ", "auth_shadow: ", "auth_ldap: ", "auth_sasldb: ", "Authentication failed for ",
    "dup_request", "pam_authenticate", "process_", "set_auth_mech",
)  # fmt: skip


def _parse(record: Record, msg: str, label: str) -> Sequence[Event] | None:
    head, sep, text = msg.partition(": ")
    if not sep:
        return None
    if head.rstrip() != "do_auth":
        return _NOTHING if msg.startswith(_QUIET) or msg.lstrip(":").startswith(_QUIET) else None
    if text.startswith("auth failure: [user="):
        ok, body = False, text[20:]
    elif text.startswith("auth success: [user="):
        ok, body = True, text[20:]
    elif text.startswith("auth success (cached): [user="):
        ok, body = True, text[29:]
    else:
        return _NOTHING if text.startswith(("auth ", "response")) else None
    svc = _SERVICE.search(body)
    if svc is None:
        return None
    user = body[: svc.start()]
    rest = body[svc.end() :]
    mech = _MECH.search(rest)
    if mech is not None:
        realm, method, reason = rest[: mech.start()], mech.group(1), mech.group(2) or ""
    elif ok and rest.endswith("]"):  # the cached form logs no mech
        realm, method, reason = rest[:-1], "", ""
    else:
        return None
    if realm and "@" not in user:
        user = f"{user}@{realm}"
    service = _SERVICES.get(svc.group(1), svc.group(1))
    if ok:
        return [
            AuthSucceeded(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                user=user,
                client=None,
                method=method,
                layer="backend",
            )
        ]
    return [
        AuthFailed(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=service,
            client=None,
            user=user,
            method=method,
            reason=reason,
            layer="backend",
        )
    ]


class SaslauthdFormat:
    name = "saslauthd"

    def claims(self, program: str) -> bool:
        return program in _PROGRAMS

    def route(self, program: str) -> tuple[Handler, str] | None:
        return (_parse, "") if program in _PROGRAMS else None

    def parse(self, record: Record) -> Sequence[Event] | None:
        return _parse(record, record.message, "") if record.program in _PROGRAMS else None
