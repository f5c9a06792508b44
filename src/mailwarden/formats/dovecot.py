"""Dovecot 2.2-2.4: the login processes (frontend) and the auth process (backend).

One failed IMAP, POP3, submission or ManageSieve login is usually written
twice: the auth process logs each password check
(``auth: passwd-file(bob,203.0.113.5): Password mismatch``) and the login
process logs a summary when the connection ends
(``imap-login: Disconnected (auth failed, 3 attempts in 15 secs): ...``).
Both are kept, tagged ``layer="backend"`` and ``layer="frontend"``, because
either may be missing: ``auth_verbose=no`` (the default) silences the backend,
SMTP AUTH through Postfix never reaches a login process, and a client that
fails and then succeeds in one session gets no failure summary. Detectors count
each layer and take the larger count, never the sum.

Every user name here is attacker-typed and Dovecot writes it unescaped (only
control characters become ``?`` and the length is capped at 80 bytes in login
lines, 64 in auth lines), so a name may contain ``>, rip=192.0.2.66`` or
``,192.0.2.66): Password mismatch``. Addresses are therefore found from the
side the attacker cannot reach. In login lines every element after ``user=<>``
is server-written (the mechanism name is client-chosen but upper-cased, so it
cannot spell ``rip=``): the last ``rip=`` is the real one. In auth lines the
user name sits before the address and, with ``auth_verbose_passwords``, the
typed password after it; when the identifier could end in more than one place,
the line is ambiguous and the event keeps its verdict but no ``client``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from mailwarden.formats.base import Handler
from mailwarden.formats.base import normalise_ip as _normalise_ip
from mailwarden.model import AuthFailed, AuthSucceeded, Disconnect, Event, Record

__all__ = ["DovecotFormat"]

_NOTHING: tuple[Event, ...] = ()
_LOGIN_SERVICES = {
    "imap-login": "imap",
    "pop3-login": "pop3",
    "submission-login": "submission",
    "managesieve-login": "managesieve",
}
# dovecot-auth: the 1.x auth binary, under whose name PAM modules still log.
_AUTH = frozenset({"auth", "auth-worker", "dovecot-auth"})
_SYSLOG_TAGS = frozenset({"dovecot"})
_LEVELS = frozenset({"Info", "Warning", "Error", "Fatal", "Panic", "Debug"})
_MAX_ADDR = 64  # longer than any address Dovecot prints
# Real identifiers end this early: name(64-byte user,address,master,sasl:mech,<session>..).
_IDENT_SPAN = 512

# Phrase tables, packed by hand so that each reads as one list.
# fmt: off
# Processes whose lines carry no login verdict: mail sessions (no client address in
# the default mail_log_prefix), deliveries and the service daemons.
_QUIET_PROGRAMS = frozenset({
    "imap", "pop3", "submission", "managesieve", "lmtp", "lda", "deliver", "dovecot-lda",
    "master", "anvil", "config", "log", "stats", "old-stats", "dict", "dict-async", "indexer",
    "indexer-worker", "quota-status", "doveadm", "doveadm-server", "dsync", "director",
    "replicator", "aggregator", "ipc", "imap-hibernate", "health-check", "imap-urlauth",
    "imap-urlauth-login", "imap-urlauth-worker",
})
# Human reason of a failed login (2.2-2.4 wording) -> Dovecot 2.4's event reason code.
_FAILED = {
    "auth failed": "auth_failed", "authorization failed": "authorization_failed",
    "user disabled": "user_disabled", "password expired": "password_expired",
    "sent invalid base64 in response": "invalid_base64", "login disabled": "login_disabled",
    "tried to use unsupported auth mechanism": "invalid_mech",
    "anonymous logins disabled": "anonymous_auth_disabled",
    "credentials contain control characters": "invalid_credentials",
    "proxy dest auth failed": "proxy_dest_auth_failed",
    "proxy dest authentication failure": "proxy_dest_auth_failed",
}
_CLEARTEXT = ("tried to use disallowed ", "tried to use disabled ")
# Sessions that ended without a rejected credential: scans, TLS failures, server trouble.
# Checked after _FAILED, so "auth " and "client" cannot swallow "auth failed".
_ENDED = (
    "no auth attempts", "disconnected ", "client", "auth ", "aborted authentication",
    "internal failure", "connection limit reached", "proxy dest ", "cert required",
    "The process is shutting down",
)
_SESSION_END = (
    "Disconnected", "Aborted login", "Login aborted", "Connection closed",
    "Client has quit the connection", "Remote closed connection", "Maximum number of connections",
)
# Per-attempt and diagnostic lines: the summary at disconnect already counts the attempts.
_LOGIN_QUIET = (
    "Login failed: ", "Authenticate ", "APOP failed", "ID sent: ", "proxy(", "SSL is disabled",
)
_MISMATCH_FORMS = (
    ("Password mismatch", "password_mismatch"), ("unknown user", "unknown_user"),
    ("invalid credentials", "password_mismatch"),
)
_NEXT_DB = (" - trying the next passdb", " - trying the next userdb")
_PASSWORD_ECHO = (" (given password: ", " (SHA1 of given password: ")
_BACKEND_OTHER = ("Login failed (status=", "allow_nets check", "Username character disallowed")
_BACKEND_QUIET = (
    "Policy check action is", "Request timed out", "Master user logging in",
    "Attempted master login", "lookup",
)
# fmt: on
_KNOWN = _SYSLOG_TAGS | _AUTH | _QUIET_PROGRAMS | frozenset(_LOGIN_SERVICES)

_ATTEMPTS = re.compile(r", (\d{1,9}) attempts")
_OLD_AUTH = re.compile(r"auth(?:-worker)?\((?:\d{1,10}|default)\)")
_WORKER_CONN = re.compile(r"conn [^\s()]{1,200} \([^()]{0,200}\): auth-worker<\d{1,10}>: ")
# 2.4: ")" then worker pid and/or session, the worker's request number, level, db name.
_TAIL_24 = re.compile(
    r"\)(?:<[^<>\s]{1,128}>){0,2}(?:: request \[\d{1,10}\])?: "
    r"(?:(Info|Warning|Error|Fatal|Panic|Debug): )?(?:[A-Za-z0-9_.-]{1,64}: )?"
)

# Addresses repeat endlessly; the bound keeps address floods from growing the cache.
_cached_ip = lru_cache(maxsize=8192)(_normalise_ip)


def _ip(text: str) -> str | None:
    """A server-written address in canonical form; over-long text is never parsed."""
    return _cached_ip(text) if 0 < len(text) <= _MAX_ADDR else None


def _base(program: str) -> str:
    """``imap(alice)<7362><Xwike..>`` -> ``imap``; ``auth-worker(12)`` -> ``auth-worker``."""
    return program.partition("(")[0].partition("<")[0]


def _info(text: str) -> str | None:
    """``Info: Login: ...`` -> ``Login: ...``; None for other levels, which carry no verdict."""
    head, sep, rest = text.partition(": ")
    if sep and head in _LEVELS:
        return rest if head == "Info" else None
    return text


class DovecotFormat:
    """Parser for Dovecot's own ``log_path`` files and its syslog output."""

    name = "dovecot"

    def claims(self, program: str) -> bool:
        return _base(program) in _KNOWN

    def route(self, program: str) -> tuple[Handler, str]:
        """One parser for every program: which process wrote a line is read from the line."""
        return _parse, ""

    def parse(self, record: Record) -> Sequence[Event] | None:
        return _parse(record, record.message, "")


def _parse(record: Record, message: str, label: str) -> Sequence[Event] | None:
    """The Dovecot line of ``record`` (``message`` is ``record.message``; ``label`` is unused)."""
    program, text = record.program, message
    base = _base(program)
    for _ in range(2):  # syslog, and 1.x's doubled "dovecot: dovecot: auth(default): "
        if base not in _SYSLOG_TAGS:
            break
        # The message holds Dovecot's own prefix; a 2.4 auth prefix holds the
        # user name, so it is never split at its first ": ".
        if text.startswith(("auth(", "auth-worker(")) and not _OLD_AUTH.match(text):
            return _backend(text, record, modern=True)
        program, sep, text = text.partition(": ")
        if not sep:
            return None
        base = _base(program)
    if base in _LOGIN_SERVICES:
        return _frontend(_LOGIN_SERVICES[base], text, record)
    if base in _AUTH:
        if program != base and not _OLD_AUTH.fullmatch(program):
            # 2.4 log_path: the framer cut "auth(user,ip,sasl:x)<sess>" as the program.
            return _backend(f"{program}: {text}", record, modern=True)
        info = _info(text)
        if info is None:
            return _NOTHING
        conn = _WORKER_CONN.match(info)
        text = info[conn.end() :] if conn else info
        if text.startswith("pam_"):
            # pam_unix's own syslog line repeats what Dovecot's pam(...) line says.
            return _NOTHING
        return _backend(text, record, modern=False)
    if base in _KNOWN:
        return _NOTHING
    return None


# --- frontend ------------------------------------------------------------------------


def _frontend(service: str, message: str, record: Record) -> Sequence[Event] | None:
    text = _info(message)
    if text is None:
        return _NOTHING
    if text.startswith("Login: "):
        user, method, client, local, session = _login_fields(text[7:])
        return (
            AuthSucceeded(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                user=user,
                client=client,
                method=method,
                local=local,
                session=session,
            ),
        )
    if text.startswith(_LOGIN_QUIET):
        return _NOTHING
    head, elems = _split_elements(text)
    verdict = _summary(head)
    if verdict is None and not head.startswith(_SESSION_END):
        return None
    user, method, client, local, _ = _login_fields(elems)
    if verdict is not None and verdict[0]:
        return (
            AuthFailed(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=service,
                client=client,
                user=user,
                method=method,
                reason=verdict[0],
                attempts=verdict[1],
                local=local,
            ),
        )
    return (Disconnect(ts=record.ts, source=record.source, host=record.host, service=service, client=client),)


def _split_elements(text: str) -> tuple[str, str]:
    """Server-written message and the ``user=<..>, method=.., rip=..`` list after it.

    The message comes first, so the first marker is the real boundary: a marker
    typed inside a user name can only come later.
    """
    best = -1
    for marker in (": user=<", ": method=", ": rip="):
        at = text.find(marker)
        if at >= 0 and (best < 0 or at < best):
            best = at
    if best < 0:
        return text, ""
    return text[:best], text[best + 2 :]


def _last(elems: str, key: str) -> tuple[int, str]:
    """Position and value of the last ``key=`` element, or (-1, "")."""
    at = elems.rfind(f", {key}=")
    if at >= 0:
        start = at + len(key) + 3
    elif elems.startswith(f"{key}="):
        at, start = 0, len(key) + 1
    else:
        return -1, ""
    end = elems.find(", ", start)
    return at, elems[start:] if end < 0 else elems[start:end]


def _login_fields(elems: str) -> tuple[str, str, str | None, str | None, str]:
    """(user, method, client, local, session) from a login element list, read from the right."""
    rip_at, rip = _last(elems, "rip")
    lip_at, lip = _last(elems, "lip")
    if lip_at < rip_at:  # an earlier "lip=" can only be typed inside the user name
        lip = ""
    session = ""
    sess_at = elems.rfind(", session=<")
    if sess_at > rip_at:
        close = elems.find(">", sess_at)
        session = elems[sess_at + 11 : close] if close > 0 else ""
    bound = rip_at if rip_at >= 0 else (lip_at if lip_at >= 0 else len(elems))
    user = method = ""
    method_at = elems.rfind(", method=", 0, bound)
    if method_at >= 0:
        method = elems[method_at + 9 : bound]
    elif elems.startswith("method="):
        method = elems[7:bound]
    if elems.startswith("user=<"):
        user = elems[6 : method_at if method_at >= 0 else bound]
        user = user.removesuffix(">")
    return user, method, _ip(rip), _ip(lip), session


def _summary(head: str) -> tuple[str, int] | None:
    """(reason code, attempts) of a session summary; reason "" when nothing was rejected.

    The human reason is the last parenthesised group of the message (2.2, 2.3)
    or the one before Dovecot 2.4's ``(event_reason)``.
    """
    end = len(head)
    for _ in range(3):
        close = head.rfind(")", 0, end)
        start = head.rfind("(", 0, close) if close > 0 else -1
        if start < 0:
            return None
        group = head[start + 1 : close]
        phrase = group.split(",", 1)[0]
        if phrase.startswith("proxy dest ") and " to " in phrase:
            phrase = phrase[: phrase.find(" to ")]  # after 2.4.4 it names the destination
        code = _FAILED.get(phrase)
        if code is None and phrase.startswith(_CLEARTEXT):
            code = "cleartext_auth_disabled"
        if code is not None:
            found = _ATTEMPTS.search(group)
            return code, int(found[1]) if found else 1
        if phrase.startswith(_ENDED):
            return "", 0
        end = start
    return None


# --- backend -------------------------------------------------------------------------


def _backend(text: str, record: Record, *, modern: bool) -> Sequence[Event] | None:
    """``name(user,ip[,...]): message`` (2.2/2.3) or ``auth(user,ip,...)<..>: [db: ]message`` (2.4).

    Dovecot's own text never holds a second ``): `` (or 2.4 prefix end) within
    the identifier's reach, so a second one was typed: into the user name
    (before the real one) or into an echoed password or name (after it). The
    two cannot be told apart, so such a line keeps its verdict but no address
    and no user. A verdict must also match Dovecot's wording exactly, so a
    line cut short by a log writer is unparsed rather than misread.
    """
    open_at = text.find("(")
    if not 0 < open_at <= 64 or " " in text[:open_at]:
        return None
    count, ident, reason = 0, "", ""
    first: str | None = ""
    for close, start, level_ok in _readings(text, open_at, modern=modern):
        verdict = _verdict(text[start:]) if level_ok else ""
        count += 1
        if count == 1:
            ident, first = text[open_at + 1 : close], verdict
        reason = reason or verdict or ""
        if count > 1 and reason:
            break
    if not reason:
        return _NOTHING if count and first == "" else None
    user, client, method = _identifier(ident) if count == 1 else ("", None, "")
    return (
        AuthFailed(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service="auth",
            client=client,
            user=user,
            method=method,
            reason=reason,
            layer="backend",
        ),
    )


def _readings(text: str, open_at: int, *, modern: bool) -> Iterator[tuple[int, int, bool]]:
    """(``)`` position, message start, Info level) for each place the identifier could end."""
    close = text.find(")", open_at, _IDENT_SPAN)
    while close > 0:
        if modern:
            tail = _TAIL_24.match(text, close)
            if tail:
                yield close, tail.end(), tail[1] in (None, "Info")
        elif text.startswith("): ", close):
            yield close, close + 3, True
        close = text.find(")", close + 1, _IDENT_SPAN)


def _identifier(ident: str) -> tuple[str, str | None, str]:
    """(user, client, method) of ``user,ip[,master][,<sess>]`` or ``user,ip,sasl:mech[,master]``.

    Read from the right, where Dovecot wrote the fields after the user name.
    """
    rest, method = ident, ""
    kinds: set[str] = set()
    for _ in range(3):
        head, sep, last = rest.rpartition(",")
        if not sep:
            break
        if last.startswith("sasl:"):
            kind, method = "sasl", last[5:].upper()
        elif last in ("", "master"):
            kind = last or "session"
        elif last.startswith("<") and last.endswith(">"):
            kind = "session"
        else:
            break
        if kind in kinds:
            break
        kinds.add(kind)
        rest = head
    head, sep, last = rest.rpartition(",")
    client = _ip(last) if sep else None
    user = head if client else rest
    return ("" if user == "?" else user), client, method


def _verdict(message: str) -> str | None:
    """Failure reason of an auth message; "" when understood but not a failure, None if unknown."""
    for phrase, reason in _MISMATCH_FORMS:
        if message.startswith(phrase):
            return reason if _plain_tail(message[len(phrase) :]) else None
    if message.startswith("pam_authenticate() failed: "):
        detail = message[27:]
        if detail.endswith(" missing?)"):
            return ""  # a missing PAM service file: the server's fault, logged as an error
        if detail.startswith("Authentication failure"):
            return "password_mismatch"
        if detail.startswith("User not known"):
            return "unknown_user"
        return "other"
    if message.startswith("Authentication failure due to policy server refusal"):
        return "policy_refusal"
    if message.startswith(_BACKEND_OTHER):
        return "other"
    if message.startswith(_BACKEND_QUIET):
        return ""
    return None


def _plain_tail(tail: str) -> bool:
    """Whether ``tail`` is exactly what may follow "Password mismatch" / "unknown user"."""
    for suffix in _NEXT_DB:
        if tail.endswith(suffix):
            tail = tail[: -len(suffix)]
            break
    tail = tail.removeprefix(" (for LDAP bind)")
    return not tail or (tail.startswith(_PASSWORD_ECHO) and tail.endswith(")"))
