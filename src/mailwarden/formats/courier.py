"""Courier: the MTA (courieresmtpd, courierd, delivery modules), Courier-IMAP and courier-authlib.

Every Courier daemon writes ``LEVEL: text`` lines to stderr; ``courierlogger``
sends them to syslog under the daemon's name and drops the level, while a
daemon whose stderr goes straight to syslog or journald keeps it
(``INFO: LOGIN FAILED, ...``). Both forms are read.

Courier-IMAP (``imapd``, ``imapd-ssl``, ``pop3d``, ``pop3d-ssl``, and the 3.x
names ``imaplogin``, ``courierpop3login``) writes ``LOGIN, user=U, ip=[A],
port=[P], protocol=..``, ``LOGIN FAILED, user=U, ip=[A], port=[P]`` and
session lines. In a failed login ``U`` is what the client typed, verbatim
(``user=x, ip=[192.0.2.66]`` is a valid login name), and only ``port=`` follows
the address: the address is the *last* ``, ip=[..]`` and the tail after it must
be exactly what the server writes, or the line keeps its verdict without a
client. In the other lines the user is the authenticated account and the
first ``, ip=[`` is the server's.

A bare ``imapd``/``pop3d`` tag is shared with UW-imapd and others: lines in
their wording are not ours and stay unparsed. The MTA's lines are read by
``_courier_mta``; ``docs/formats/courier.md`` lists the shapes and their sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from mailwarden.formats._courier_mta import CourierMta
from mailwarden.formats.base import Handler, normalise_ip
from mailwarden.model import AuthFailed, AuthSucceeded, Connect, Disconnect, Event, Record

__all__ = ["CourierFormat", "courier_ip"]

_NOTHING: tuple[Event, ...] = ()
_MAX_ADDR = 64
# courierlogger reads stderr with fgets() into 512 bytes and throws the rest of a longer
# line away (liblog/logger.c), so a long typed user name can push the real address out and
# leave a typed one at the end: a LOGIN FAILED line that may have been cut keeps no client.
_CUT_AT = 500

# Courier-IMAP's names across packagings (fail2ban's courier-auth filter allows
# (courier)?(imapd?|pop3d?)(login)?(-ssl)?; bare "imap"/"pop3" belong to Dovecot).
_IMAP_PROGRAMS = frozenset(
    {"imapd", "imapd-ssl", "imaplogin", "imaplogin-ssl", "courierimapd", "courierimaplogin"}
)
_POP3_PROGRAMS = frozenset(
    {"pop3d", "pop3d-ssl", "pop3login", "courierpop3d", "courierpop3login", "courierpop3login-ssl"}
)
_AUTHDAEMON = frozenset({"authdaemond", "authdaemond.plain", "authdaemond.mysql", "authdaemond.ldap"})
_LEVELS = ("INFO: ", "DEBUG: ", "ERR: ", "WARN: ", "ALERT: ", "CRIT: ")

# Session and mailbox lines with nothing about a login verdict.
_IMAP_QUIET = (
    "authentication error: ",  # perror() after the auth back end failed: server trouble
    "chdir ",
    "LOCKED, ",
    "DELETED, ",
    "EXPUNGED, ",
    "ID, ",
    "IMAP FETCH ERROR",
    "couriertls: ",
    "Unexpected SSL connection shutdown",
    "Maximum connection limit reached",
    "dropped blocked connection",
    "proxy enabled",
    "Did not receive greeting",
    "Login to ",
    "UTF8 rejected",
    "Login userid rejected",
    "Login password rejected",
    "Error while saving",
    "failed to open pop3dlist",
    "I/O error while reading",
    "Failed to create cache file",
    "Error: ",
    "exec(",
)
_SESSION_END = ("LOGOUT, ", "DISCONNECTED, ", "Disconnected, ", "TIMEOUT, ")

# courier-authlib's authdaemond: start-up and (DEBUG_LOGIN) per-request chatter. Its
# lines name no client address, so the front end's LOGIN FAILED is the one counted.
_AUTHDAEMON_QUIET = (
    "modules=",
    "restarting authdaemond children",
    "stopping authdaemond children",
    "Installing libauth",
    "Installation complete",
    "received auth request",
    "received userid lookup request",
    "Authenticated: ",
    "password matches successfully",
    "supplied password ",
    "no password available to compare",
    "zero rows returned",
    "FAIL, all modules rejected",
    "SQL query: ",
    "failed to connect to mysql server",
    "authentication error",
    "authmysql: ",
    "authpgsql: ",
    "authldap: ",
    "authpam: ",
    "authuserdb: ",
    "authshadow: ",
    "authpwd: ",
    "authcustom: ",
    "authpipe: ",
    "authsqlite: ",
    "authcram: ",
    "ldap_",
    "mysql_",
    "Unable to ",
    "/",  # "/usr/lib/courier-authlib/libauthpam.so.0: undefined symbol: ..."
)

_cached_ip = lru_cache(maxsize=8192)(normalise_ip)


def courier_ip(text: str) -> str | None:
    """An address as Courier writes it (``::ffff:192.0.2.7`` is given as ``192.0.2.7``)."""
    if not 0 < len(text) <= _MAX_ADDR:
        return None
    if text.startswith(("::ffff:", "::FFFF:")) and "." in text:
        text = text[7:]
    return _cached_ip(text)


def _strip_prefix(text: str) -> str:
    """Drop a daemon level (``INFO: ``) and Plesk's ``1257871619.663804 `` stamp."""
    if text.startswith(_LEVELS):
        text = text.partition(": ")[2]
    head = text[:1]
    if "0" <= head <= "9":
        stamp, sep, rest = text.partition(" ")
        if sep and len(stamp) <= 24 and stamp.replace(".", "", 1).isdigit():
            return rest
    return text


def _session_ip(fields: str) -> str | None:
    """Client of a line whose user is the authenticated account: the first ``ip=[..]``."""
    at = fields.find("ip=[")
    if at < 0:
        return None
    end = fields.find("]", at + 4)
    return courier_ip(fields[at + 4 : end]) if end > 0 else None


def _failed_fields(fields: str) -> tuple[str, str, str | None]:
    """(user, method, client) of ``user=U, ip=[A][, port=[P]]`` read from the right.

    ``U`` may contain anything, so the address is the last ``ip=[``; when the
    rest of the line is not exactly ``A]`` or ``A], port=[digits]`` the client is None.
    """
    at = fields.rfind(", ip=[")
    if at >= 0:
        head, tail = fields[:at], fields[at + 6 :]
    elif fields.startswith("ip=["):
        head, tail = "", fields[4:]
    else:
        return "", "", None
    addr, sep, rest = tail.partition("]")
    client = None
    if sep and (not rest or _is_port_tail(rest)):
        client = courier_ip(addr)
    user = method = ""
    if head.startswith("user="):
        user = head[5:]
    elif head.startswith("method="):
        method = head[7:]
    return user, method, client


def _is_port_tail(rest: str) -> bool:
    if not (rest.startswith(", port=[") and rest.endswith("]")):
        return False
    port = rest[8:-1]
    return 0 < len(port) <= 5 and port.isdigit()


def _imap_handler(service: str) -> Handler:
    def parse(record: Record, message: str, label: str) -> Sequence[Event] | None:
        text = _strip_prefix(message)
        if text.startswith("LOGIN, "):
            fields = text[7:]
            if not fields.startswith("user="):
                return None
            at = fields.find(", ip=[")
            if at < 0:
                return None
            return (
                AuthSucceeded(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    service=service,
                    user=fields[5:at],
                    client=_session_ip(fields[at + 2 :]),
                ),
            )
        if text.startswith("LOGIN FAILED, "):
            user, method, client = _failed_fields(text[14:])
            if len(message) > 120 and len(message.encode("utf-8", "surrogatepass")) >= _CUT_AT:
                client = None
            return (
                AuthFailed(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    service=service,
                    client=client,
                    user=user,
                    method=method,
                    reason="auth_failed",
                ),
            )
        if text.startswith("Connection, "):
            return (
                Connect(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    service=service,
                    client=_session_ip(text[12:]),
                ),
            )
        if text.startswith(_SESSION_END):
            fields = text.partition(", ")[2]
            if fields.startswith("user="):
                at = fields.find(", ip=[")
                fields = fields[at + 2 :] if at >= 0 else ""
            if not fields.startswith("ip=["):
                return None
            return (
                Disconnect(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    service=service,
                    client=_session_ip(fields),
                ),
            )
        if text.startswith(_IMAP_QUIET):
            return _NOTHING
        return None

    return parse


def _authdaemon(record: Record, message: str, label: str) -> Sequence[Event] | None:
    text = message[6:] if message.startswith("DEBUG: ") else message
    if text.startswith(_AUTHDAEMON_QUIET):
        return _NOTHING
    return None


_IMAP = _imap_handler("imap")
_POP3 = _imap_handler("pop3")


class CourierFormat:
    """Courier-IMAP, courier-authlib and the Courier MTA; MTA state lives per instance."""

    name = "courier"

    def __init__(self) -> None:
        self.mta = CourierMta()
        self._routes: dict[str, tuple[Handler, str]] = {}
        for program in _IMAP_PROGRAMS:
            self._routes[program] = (_IMAP, "")
        for program in _POP3_PROGRAMS:
            self._routes[program] = (_POP3, "")
        for program in _AUTHDAEMON:
            self._routes[program] = (_authdaemon, "")
        for program, route in self.mta.routes().items():
            self._routes[program] = route

    @property
    def dropped(self) -> int:
        """Per-stream state entries evicted at their bound (see ``_courier_mta``)."""
        return self.mta.dropped

    def claims(self, program: str) -> bool:
        return program in self._routes

    def route(self, program: str) -> tuple[Handler, str] | None:
        return self._routes.get(program)

    def parse(self, record: Record) -> Sequence[Event] | None:
        route = self._routes.get(record.program)
        if route is None:
            return None
        return route[0](record, record.message, route[1])
