"""Exim mainlog lines about SMTP sessions: failed AUTH, ACL rejections, connections.

The client address is read only from the ``H=`` (or bare host) field in the
position Exim writes it (see ``_exim_fields.parse_host``); HELO names,
senders, recipients, AUTH ids and the quoted commands of protocol errors are
the client's text and are kept as strings.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats._exim_fields import end_of_quoted, parse_host, skip_address
from mailwarden.formats._exim_message import NOTHING, SUBMISSION_PORTS
from mailwarden.model import (
    AuthFailed,
    Connect,
    Disconnect,
    Event,
    ProtocolViolation,
    Record,
    Rejected,
)

_AUTH_FAILED = " authenticator failed for "
_DETAIL_MAX = 200
# Life-cycle and diagnostics that name no client's deed.
_QUIET = (
    "Start queue run",
    "End queue run",
    "notify triggered queue run",
    "pid ",  # "pid 1234: SIGHUP received: re-exec daemon"
    "cwd=",  # +arguments (cPanel's default): "cwd=/var/spool/exim 3 args: ..."
    "exim ",  # "exim 4.96 daemon started: pid=..."
    "no host name found for IP address ",
    "no IP address found for host ",
    "ident connection to ",
    "TLS error on connection ",
    "Connection from ",  # "... refused: too many connections" (daemon.c: a limit, no deed)
    "Failed to get ",  # dbfn.c: "Failed to get %s lock for %s: %s"
    "Spool file for ",  # spool_in.c: "... is locked (another process is handling this message)"
    "spam acl condition:",
    "malware acl condition:",
)
# (phrase that follows the host fields, stage)
_VERBS = (
    (" rejected RCPT ", "RCPT"),
    (" temporarily rejected RCPT ", "RCPT"),
    (" rejected MAIL ", "MAIL"),
    (" temporarily rejected MAIL ", "MAIL"),
    (" rejected after DATA", "DATA"),
    (" temporarily rejected after DATA", "DATA"),
    (" rejected DATA", "DATA"),
    (" rejected EHLO or HELO ", "EHLO"),
    (" temporarily rejected EHLO or HELO ", "EHLO"),
    (" rejected connection in ", "CONNECT"),
    (" temporarily rejected connection in ", "CONNECT"),
    (" dropped by ", "CONNECT"),
    (" sender verify fail for ", "MAIL"),
    (" sender verify defer for ", "MAIL"),
    (" rejected VRFY ", "VRFY"),
    (" rejected EXPN ", "EXPN"),
    (" rejected AUTH ", "AUTH"),
    (" rejected by local_scan()", "DATA"),
    (" temporarily rejected by local_scan()", "DATA"),
    (" rejected by non-SMTP ACL", "DATA"),
)
_LEADING_KEYS = ("I=", "U=", "Ci=", "X=", "CV=", "SNI=", "DN=", "F=", "A=", "P=", "S=", "TFO", "DS", "D=")
_RBL = (" dnsbl", "black list", "blacklist", "blocklist", "block list", "blocked using", "listed in ",
        "listed at ", " rbl", " RBL", "spamhaus", "Spamhaus", "spamcop")  # fmt: skip
_UNKNOWN_USER = ("Unrouteable address", "nknown user", "ser unknown", "No Such User", "No such user",
                 "Unknown local part", "unknown local-part", "does not exist")  # fmt: skip
_RELAY = ("relay not permitted", "Relay not permitted", "elaying denied", "relaying not permitted")


def parse_session(record: Record, msg: str) -> Sequence[Event] | None:
    """A mainlog line without a message id (or with one, for the H=/F= reject forms)."""
    if msg.startswith(("H=", "F=", "U=")):
        return _rejected(record, msg)
    at = msg.find(_AUTH_FAILED, 0, 96)
    if at > 0 and " " not in msg[:at]:
        return _auth_failed(record, msg, at)
    if msg.startswith("SMTP connection from "):
        return _connection(record, msg, len("SMTP connection from "))
    if msg.startswith("no MAIL in SMTP connection from "):
        return _disconnect(record, msg, len("no MAIL in SMTP connection from "))
    if msg.startswith("unexpected disconnection while reading SMTP command from "):
        return _disconnect(record, msg, len("unexpected disconnection while reading SMTP command from "))
    if msg.startswith("SMTP command timeout on connection from "):
        return _disconnect(record, msg, len("SMTP command timeout on connection from "))
    if msg.startswith("SMTP data timeout (message abandoned) on connection from "):
        return _disconnect(record, msg, len("SMTP data timeout (message abandoned) on connection from "))
    if msg.startswith("SMTP call from "):
        return _dropped(record, msg, 15)
    if msg.startswith("SMTP protocol synchronization error ("):
        return _sync_error(record, msg)
    if msg.startswith("SMTP protocol error in "):
        return _protocol_error(record, msg)
    if msg.startswith("SMTP syntax error in "):
        return _protocol_error(record, msg)
    if msg.startswith(_QUIET):
        return NOTHING
    return None


def _client_at(msg: str, pos: int) -> tuple[str, str | None, int, str] | None:
    """``(name, ip, end, interface port)`` of the host at ``pos`` (``H=`` optional)."""
    if msg.startswith("H=", pos):
        pos += 2
    host = parse_host(msg, pos)
    if host is None:
        return None
    name, _, ip, end, _ = host
    iface = ""
    if msg.startswith(" I=[", end):
        close = msg.find("]", end + 4, end + 70)
        if close > 0:
            end = close + 1
            if msg.startswith(":", end):
                k = end + 1
                while k < len(msg) and k - end <= 6 and msg[k].isdigit():
                    k += 1
                iface = msg[end + 1 : k]
                end = k
    return name, ip, end, iface


def _service(iface: str) -> str:
    return "submission" if iface in SUBMISSION_PORTS else "smtp"


# --- authentication -----------------------------------------------------------------


def _auth_failed(record: Record, msg: str, at: int) -> Sequence[Event] | None:
    """``NAME authenticator failed for [H=]host: 535 Incorrect authentication data (set_id=user)``."""
    method = msg[:at]
    start = at + len(_AUTH_FAILED)
    host = _client_at(msg, start)
    if host is None:
        return None
    _, client, pos, iface = host
    # Skip " U=ident" / " Ci=id" (blank-free) up to Exim's ": " before the reply.
    while msg.startswith((" U=", " Ci="), pos):
        sp = msg.find(" ", pos + 1)
        colon = msg.find(": ", pos + 1)
        if colon < 0:
            return None
        pos = colon if sp < 0 or colon < sp else sp
    if not msg.startswith(": ", pos):
        return None
    reply = msg[pos + 2 :]
    if len(reply) < 4 or not reply[:3].isdecimal() or not reply[:3].isascii():
        return None
    if reply[0] != "5":
        return NOTHING  # 435 "Unable to authenticate at present": the server's trouble
    user = ""
    sid = reply.find(" (set_id=")
    if sid >= 0:
        close = reply.rfind(")")
        user = reply[sid + 9 : close] if close > sid + 9 else reply[sid + 9 :]
        reason = reply[:sid]
    else:
        reason = reply
    if reason.endswith(" Time(s)"):  # ": 1 Time(s)" as some builds append
        reason = reason.rpartition(": ")[0] or reason
    return [
        AuthFailed(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=_service(iface),
            client=client,
            user=user,
            method=method,
            reason=reason[4:] if reason[3:4] == " " else reason,
        )
    ]


# --- ACL rejections ---------------------------------------------------------------


def _rejected(record: Record, msg: str) -> Sequence[Event] | None:
    """``H=host [I=..] [U=..] ... [F=<s>] rejected RCPT <r>: reason`` and its relatives."""
    pos = 0
    sender = ""
    client: str | None = None
    name = ""
    iface = ""
    seen_host = False
    n = len(msg)
    while pos < n:
        if msg.startswith("H=", pos) and not seen_host:
            host = _client_at(msg, pos)
            if host is None:
                return None
            name, client, pos, iface = host
            seen_host = True
        elif msg.startswith("F=<", pos):
            close = skip_address(msg, pos + 3, ">")
            if close < 0:
                return None
            sender = msg[pos + 3 : close]
            pos = close + 1
        elif msg.startswith('DN="', pos):
            close = end_of_quoted(msg, pos + 3)
            if close < 0:
                return None
            pos = close
        elif msg.startswith(_LEADING_KEYS, pos):
            sp = msg.find(" ", pos)
            if msg.startswith("F=", pos):  # before 4.7x: "F=sender" without brackets
                sender = msg[pos + 2 : n if sp < 0 else sp]
            pos = n if sp < 0 else sp
        else:
            return None
        # pos is at " " before the next field or the verb
        for verb, stage in _VERBS:
            if msg.startswith(verb, pos):
                return _reject_event(record, msg, pos + len(verb), verb, stage, client, name, iface, sender)
        if msg.startswith(" Warning: ", pos) or msg.startswith(" Warning:", pos):
            return NOTHING
        if msg.startswith(" incomplete transaction (", pos):
            # log_selector +smtp_incomplete_transaction (seen on a real Exim 4.96 with +all): the
            # session's own end line ("closed by QUIT", "no MAIL in ...") follows and says it
            return NOTHING
        if not msg.startswith(" ", pos):
            return None
        pos += 1
    return None


def _reject_event(  # noqa: PLR0917 - one call site, the fields read so far
    record: Record,
    msg: str,
    pos: int,
    verb: str,
    stage: str,
    client: str | None,
    name: str,
    iface: str,
    sender: str,
) -> Sequence[Event] | None:
    recipient = helo = ""
    rest = msg[pos:]
    detail = rest
    if stage in ("RCPT", "MAIL") and verb.endswith(" "):
        if rest.startswith("<"):
            close = skip_address(rest, 1, ">")
            if close < 0:
                return None
            addr = rest[1:close]
            if stage == "RCPT":
                recipient = addr
            elif not sender:
                sender = addr
            detail = rest[close + 1 :].removeprefix(": ")
        else:
            # older builds: "rejected RCPT dir@example.com: reason" (no brackets)
            addr, _, detail = rest.partition(": ")
            if stage == "RCPT":
                recipient = addr
            elif not sender:
                sender = addr
    elif stage == "EHLO":
        helo, _, detail = rest.partition(": ")
    else:
        detail = rest.removeprefix(": ").removeprefix(":")
    if stage == "EHLO":
        category = "helo"
    elif "sender verify" in verb:
        category = "sender"
    else:
        category = _category(detail)
    code = ""
    if len(detail) >= 4 and detail[:3].isdecimal() and detail[:3].isascii() and detail[3] == " ":
        code = detail[:3]
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=_service(iface),
            client=client,
            client_name=name,
            stage=stage,
            code=code,
            category=category,
            detail=detail[:_DETAIL_MAX],
            sender=sender,
            recipient=recipient,
            helo=helo,
        )
    ]


def _category(detail: str) -> str:
    if any(p in detail for p in _RELAY):
        return "relay_denied"
    if any(p in detail for p in _RBL):
        return "rbl"
    if any(p in detail for p in _UNKNOWN_USER):
        return "unknown_user"
    if "Sender verify failed" in detail or "sender verify" in detail:
        return "sender"
    return "other"


# --- connections and protocol errors ------------------------------------------------


def _connection(record: Record, msg: str, pos: int) -> Sequence[Event] | None:
    """``SMTP connection from [ip]:port (TCP/IP connection count = N)``, ``... closed by QUIT``, ``lost``."""
    host = _client_at(msg, pos)
    if host is None:
        # a local "exim -bs" session names the calling user instead of a host
        user = msg[pos:].partition(" ")[0]
        return NOTHING if user and "[" not in msg and "(" not in user else None
    name, client, end, iface = host
    tail = msg[end:]
    if tail.startswith(" (TCP/IP connection count"):
        return [
            Connect(
                ts=record.ts,
                source=record.source,
                host=record.host,
                service=_service(iface),
                client=client,
                client_name=name,
            )
        ]
    # "closed by QUIT|EOF|DROP in ACL", "lost [while reading message data]", "D=2s ...":
    # a "DROP in ACL" follows the ACL's own "rejected ..." line, which is the Rejected event.
    if " closed by " in tail or tail.startswith((" lost", " D=")) or not tail:
        return _disc(record, client, name, iface, tail)
    return None


def _disconnect(record: Record, msg: str, pos: int) -> Sequence[Event] | None:
    host = _client_at(msg, pos)
    if host is None:
        return None
    name, client, end, iface = host
    return _disc(record, client, name, iface, msg[end:])


def _disc(record: Record, client: str | None, name: str, iface: str, tail: str) -> Sequence[Event]:
    commands = ""
    c_at = tail.rfind(" C=")
    if c_at >= 0:
        sp = tail.find(" ", c_at + 3)
        commands = tail[c_at + 3 : sp if sp >= 0 else len(tail)].rstrip(")")
    return [
        Disconnect(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=_service(iface),
            client=client,
            client_name=name,
            commands=commands[:_DETAIL_MAX],
        )
    ]


def _dropped(record: Record, msg: str, pos: int) -> Sequence[Event] | None:
    """``SMTP call from host dropped: too many ... (last was "X"[,  C=..])``: the session ended."""
    host = _client_at(msg, pos)
    if host is None:
        return None
    name, client, end, iface = host
    # " U=ident" may sit between the host and "dropped: "
    if msg.find(" dropped: ", end) < 0:
        return None
    return _disc(record, client, name, iface, msg[end:])


def _sync_error(record: Record, msg: str) -> Sequence[Event] | None:
    """``SMTP protocol synchronization error (why): rejected connection from H=.. input="..."``
    or ``...: rejected "CMD" H=.. next input="..."``: a client that does not wait for replies."""
    close = msg.find("): rejected ", 37, 160)
    if close < 0:
        return None
    why = msg[37:close]
    pos = close + 12
    if msg.startswith("connection from ", pos):
        pos += 16
        stage = "CONNECT"
    elif msg.startswith('"', pos):
        q_end = end_of_quoted(msg, pos)
        if q_end < 0 or not msg.startswith(" H=", q_end):
            return None
        stage = msg[pos + 1 : q_end - 1][:16]
        pos = q_end + 1
    else:
        return None
    host = _client_at(msg, pos)
    if host is None:
        return None
    name, client, end, iface = host
    i_at = msg.find("input=", end)
    detail = msg[i_at + 6 :] if i_at >= 0 else ""
    return [
        ProtocolViolation(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=_service(iface),
            client=client,
            client_name=name,
            stage=stage,
            violation="pipelining" if "next input" in msg[end : end + 40] or stage == "CONNECT" else why,
            detail=detail[:_DETAIL_MAX],
        )
    ]


def _protocol_error(record: Record, msg: str) -> Sequence[Event] | None:
    """``SMTP protocol error in "AUTH LOGIN" H=(x) [ip] AUTH command used when not advertised``.

    The quoted command is the client's and Exim does not escape quotes in it,
    so it may hold its own ``" H=(x) [addr] ``. Every ``" H=`` that parses as
    a host followed by a blank is a reading; readings that end at different
    places are ambiguous and give no client.
    """
    start = msg.find(' "', 17, 24)
    if start < 0:
        return None
    readings: dict[int, tuple[str, str | None, int, str]] = {}
    first = -1
    look = start
    while len(readings) < 3:
        h_at = msg.find('" H=', look)
        if h_at < 0:
            break
        host = _client_at(msg, h_at + 2)
        if host is not None and msg.startswith(" ", host[2]):
            readings[host[2]] = host
            if first < 0:
                first = h_at
        look = h_at + 1
    if not readings:
        return None
    name, client, end, iface = readings[max(readings)]
    if len(readings) > 1:
        client = None
        name = ""
    command = msg[start + 2 : first]
    detail = msg[end + 1 :]
    if detail.startswith("Ci="):  # +connection_id
        detail = detail.partition(" ")[2]
    return [
        Rejected(
            ts=record.ts,
            source=record.source,
            host=record.host,
            service=_service(iface),
            client=client,
            client_name=name,
            stage=command.partition(" ")[0].upper()[:16],
            category="other",
            detail=detail[:_DETAIL_MAX],
        )
    ]


__all__ = ["parse_session"]
