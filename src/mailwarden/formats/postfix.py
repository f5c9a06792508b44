"""Postfix (1.1 to 3.10) syslog lines → typed events.

Postfix tags every line ``<syslog_name>/<daemon>``: ``postfix/smtpd``,
``postfix/submission/smtpd`` (a master.cf service with its own syslog_name),
``postfix-out/smtp`` (a second instance). The daemon is the last component and
alone decides which parser runs; the components in between name the SMTP
service. Each daemon's parser first looks at fixed prefixes with
``str.startswith``; the few regular expressions run only on lines already known
to be of their kind and are linear in the line length.

The shapes, the lines deliberately ignored and the pflogsumm mapping are in
``docs/formats/postfix.md``; ``tests/golden/postfix`` is the executable spec.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats._postfix_delivery import (
    parse_bounce,
    parse_delivery_agent,
    parse_postsuper,
    parse_quiet,
)
from mailwarden.formats._postfix_postscreen import parse_postscreen
from mailwarden.formats._postfix_queue import parse_cleanup, parse_pickup, parse_qmgr
from mailwarden.formats._postfix_smtpd import parse_smtpd
from mailwarden.formats.base import Handler
from mailwarden.model import Event, Record

# Handlers take (record, message, label); label is the SMTP service for smtpd
# and the daemon name (the transport) for the others.

_HANDLERS: dict[str, Handler] = {
    "smtpd": parse_smtpd,
    "postscreen": parse_postscreen,
    "cleanup": parse_cleanup,
    "pickup": parse_pickup,
    "qmgr": parse_qmgr,
    "nqmgr": parse_qmgr,
    "oqmgr": parse_qmgr,
    "bounce": parse_bounce,
    "defer": parse_bounce,
    "trace": parse_bounce,
    "postsuper": parse_postsuper,
    "smtp": parse_delivery_agent,
    "lmtp": parse_delivery_agent,
    "local": parse_delivery_agent,
    "virtual": parse_delivery_agent,
    "pipe": parse_delivery_agent,
    "error": parse_delivery_agent,
    "retry": parse_delivery_agent,
    "discard": parse_delivery_agent,
}
# Life-cycle, statistics, caches, DNS helpers and local command-line tools:
# nothing they log is about a client, an account or a message's fate.
for _daemon in (
    "master",
    "postfix-script",
    "postmulti-script",
    "postfix",
    "anvil",
    "scache",
    "tlsmgr",
    "tlsproxy",
    "dnsblog",
    "trivial-rewrite",
    "proxymap",
    "verify",
    "flush",
    "showq",
    "spawn",
    "postlogd",
    "postlog",
    "sendmail",
    "postdrop",
    "postqueue",
    "postmap",
    "postalias",
    "postconf",
    "postmulti",
    "postcat",
    "postkick",
    "postlock",
    "qmqpd",
):
    _HANDLERS[_daemon] = parse_quiet

_ROUTES_MAX = 1024
_UNSEEN: tuple[Handler, str] = (lambda record, msg, label: None, "")


def _claims(program: str) -> bool:
    first = program.partition("/")[0]
    return first == "postfix" or first.startswith("postfix-")


def _route(program: str) -> tuple[Handler, str] | None:
    """Handler and label for a claimed program; None for daemons we do not know."""
    parts = program.split("/")
    daemon = parts[-1]
    handler = _HANDLERS.get(daemon)
    if handler is None:
        return None
    if daemon == "smtpd":
        # "postfix/submission/smtpd" → "submission"; plain "postfix/smtpd" → "smtp".
        return handler, parts[-2] if len(parts) > 2 else "smtp"
    return handler, daemon


class PostfixFormat:
    """The Postfix family: every program whose syslog name is ``postfix`` or ``postfix-*``."""

    name = "postfix"

    def __init__(self) -> None:
        self._routes: dict[str, tuple[Handler, str] | None] = {}

    def claims(self, program: str) -> bool:
        return _claims(program)

    def route(self, program: str) -> tuple[Handler, str] | None:
        """The daemon's parser and its label; None for programs this format cannot read."""
        route = self._routes.get(program, _UNSEEN)
        if route is _UNSEEN:
            route = _route(program) if _claims(program) else None
            if len(self._routes) < _ROUTES_MAX:
                self._routes[program] = route
        return route

    def parse(self, record: Record) -> Sequence[Event] | None:
        route = self.route(record.program)
        if route is None:
            return None
        return route[0](record, record.message, route[1])


__all__ = ["PostfixFormat"]
