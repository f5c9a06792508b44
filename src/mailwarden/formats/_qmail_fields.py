"""Field readers shared by the qmail-family parsers (qmail-send reports, ucspi-tcp, vpopmail).

qmail-send writes delivery reports through ``logsafe``: every byte outside
``!``..``~`` (and ``%``) becomes ``_`` and every newline ``/``. A report is
therefore one token, and a remote server's reply is found after
``Remote_host_said:_``. Nothing here uses a regular expression that can
backtrack more than linearly; callers cap the text they hand in.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mailwarden.formats.base import normalise_ip as _normalise_ip

normalise_ip = lru_cache(maxsize=8192)(_normalise_ip)

_MAX_ADDR = 64
_SAID = "Remote host said: "
# The reply's enhanced status code (RFC 3463) right after the basic code, or qmail's own "(#5.1.1)".
_REPLY_DSN = re.compile(r"[245]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b", re.ASCII)
_QMAIL_DSN = re.compile(r"\(#([245]\.\d{1,3}\.\d{1,3})\)", re.ASCII)
# qmail-remote's first report line names the peer: "<ip> accepted message.",
# "<ip> does not like recipient.", "Connected to <ip> but ...", "Giving up on <ip>.".
_PEER_SUFFIXES = (" accepted message.", " does not like recipient.", " failed on DATA command.")
_PEER_SUFFIXES_AFTER = (" failed after I sent the message.",)
_REPORT_MAX = 4096


def ip(text: str) -> str | None:
    """A server-written address in canonical form (IPv4-mapped IPv6 as IPv4); None otherwise."""
    if not 0 < len(text) <= _MAX_ADDR:
        return None
    if text[:7].lower() == "::ffff:" and "." in text:
        text = text[7:]
    return normalise_ip(text)


def decode_report(text: str) -> list[str]:
    """qmail-send's logsafe'd report → its lines, with blanks restored (``_`` → space).

    A literal underscore is indistinguishable from an escaped blank; both read as a blank.
    """
    return [part.replace("_", " ") for part in text[:_REPORT_MAX].split("/") if part]


def _peer(line: str) -> str:
    for suffix in _PEER_SUFFIXES + _PEER_SUFFIXES_AFTER:
        if line.endswith(suffix):
            return line[: -len(suffix)]
    if line.startswith("Connected to "):
        return line[13:].partition(" ")[0]
    if line.startswith("Giving up on ") and line.endswith("."):
        return line[13:-1]
    return ""


@lru_cache(maxsize=4096)
def read_report(text: str, remote: bool) -> tuple[str, str, str]:
    """``(relay, dsn, reply)`` of one delivery report.

    ``reply`` is the remote server's reply, verbatim, when qmail-remote quoted
    one (``Remote host said: 550 5.7.1 ...``), multi-line replies joined by a
    blank; otherwise the report itself (local deliveries, connection failures).
    """
    lines = decode_report(text)
    relay = ""
    reply_lines: list[str] = []
    in_reply = False
    for line in lines:
        if line.startswith(_SAID):
            in_reply = True
            reply_lines.append(line[len(_SAID) :])
            continue
        if in_reply and line.startswith(("Giving up on ", "I'm not going to try again")):
            in_reply = False
            continue
        if in_reply:
            reply_lines.append(line)
        elif remote and not relay:
            relay = _peer(line)
    reply = " ".join(reply_lines) if reply_lines else " ".join(lines)
    m = _REPLY_DSN.match(reply) if reply_lines else None
    if m is None:
        m = _QMAIL_DSN.search(reply)
    if remote and relay and ip(relay) is None:
        relay = ""
    return relay, (m[1] if m else ""), reply


def vpopmail_tail(text: str) -> tuple[str, str | None]:
    """``user@domain:ip`` → (``user@domain``, client). The user is attacker-typed and may hold ``:``.

    The address is the server-written tail. An IPv4 (or IPv4-mapped) tail is
    exactly the text after the last colon (an address holds none). An IPv6
    tail is read only as everything after the *first* colon: a user name that
    holds a colon then makes the tail no address at all (client unknown)
    rather than letting typed hex groups extend the address.
    """
    head, colon, last = text.rpartition(":")
    if not colon:
        return text, None
    if "." in last:
        if head[-7:].lower() == ":::ffff":  # user:::ffff:192.0.2.7 (tcpserver6, IPv4 client)
            head = head[:-7]
        return head, ip(last)
    user, _, rest = text.partition(":")
    client = ip(rest)
    if client is None:
        return head, None
    return user, client
