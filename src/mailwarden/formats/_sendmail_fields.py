"""Field readers for Sendmail 8 lines: queue ids, ``host [addr]``, to= tails, reject replies.

Sendmail writes the client as ``relay=host [addr]`` (``CurSmtpClient``: an
optional ident ``user@``, the PTR name, the address in brackets, then
`` (may be forged)``). A host name reaches the log through the resolver,
which escapes blanks and brackets, so ``host [addr]`` never contains a blank
inside either part: that is what the readers here anchor on. Every other
field of a line (senders, recipients, ``msgid=``, ``arg1=``, SASL user names,
reject texts that echo addresses) is opaque text. Patterns are linear: no
nested or unbounded lazy quantifiers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from ipaddress import IPv6Address

from mailwarden.formats.base import normalise_ip as _normalise_ip

# ``[name ][addr]`` at a fixed position; the name may be empty (``from  [addr]``).
HOST_ADDR = re.compile(
    r"(?:([^\s\[\]]*) )?\[((?:IPv6:)?[0-9A-Fa-f:.]{1,45})\]( \(may be forged\))?", re.ASCII
)
# A whole relay= value as the server writes it, followed by ", reject=".
RULESET_RELAY = re.compile(
    r", relay=(?:(?:[^\s\[\],]+ )?\[(?:IPv6:)?[0-9A-Fa-f:.]{1,45}\]|[^\s\[\],]+)"
    r"(?: \(may be forged\))?, reject=",
    re.ASCII,
)
_REPLY = re.compile(r"([245]\d\d)(?: ([245]\.\d{1,3}\.\d{1,3}))?(?: |$)", re.ASCII)
_DELAY = re.compile(r"(?:(\d{1,5})\+)?(\d{1,3}):(\d\d):(\d\d)", re.ASCII)
# The server-written part of a to= line, from ", delay=" on (8.9 to 8.18 field order).
TO_FIELDS = re.compile(
    r", delay=([0-9+:]{1,16})(?:, xdelay=[0-9+:]{1,16})?(?:, mailer=([^\s,]{1,32}))?"
    r"(?:, pri=\d{1,20})?(?:, relay=([^,]{0,160}))?(?:, dsn=([245]\.\d{1,3}\.\d{1,3}))?"
    r"(?:, ntries=\d{1,9})?(?:, stage=[^\s,]{1,32})?(?:, reply=([^\n]{0,300}?))?, stat=",
    re.ASCII,
)
# A from= line whose every field is free of commas, in logsender()'s order (msgid=,
# bodytype= ... between nrcpts= and proto=): ``from_fields`` reads it in one match.
# When it matches, each "first"/"last" occurrence the general reader looks for is
# the one matched here (no value holds a comma); any other line takes that reader.
_FROM_LINE = re.compile(
    r"from=([^,]*), size=(\d{1,18}), class=[^,]*, nrcpts=(\d{1,9})(?:, [a-z]{1,16}=[^,]*){0,8}?"
    r", proto=([^,]*), daemon=([^,]*), relay=([^,]*)",
    re.ASCII,
)
CTLADDR_UID = re.compile(r" \((\d{1,10})/\d{1,10}\)$", re.ASCII)
# relay= of a delivery to this host (a content filter, or the MTA the MSP hands to)
LOOPBACK_RELAYS = ("[127.0.0.1]", "[IPv6:::1]", "[::1]")

# mailer name -> transport of the event (``smtp`` makes a delivery external).
TRANSPORTS = {
    "esmtp": "smtp", "smtp": "smtp", "smtp8": "smtp", "dsmtp": "smtp", "relay": "smtp",
    "local": "local", "prog": "pipe", "procmail": "pipe", "lmtp": "lmtp", "cyrus": "lmtp",
    "cyrusv2": "lmtp", "mail11": "pipe", "uucp": "pipe", "*file*": "local", "*include*": "local",
}  # fmt: skip
_RBL_WORDS = ("listed at", "blacklist", "blocklist", "spamhaus", "rbl", "dnsbl", "spamcop", "barracuda")


@lru_cache(maxsize=8192)
def ip(text: str) -> str | None:
    """A server-written address in canonical form; IPv4-mapped IPv6 becomes dotted IPv4."""
    if len(text) > 64:
        return None
    found = _normalise_ip(text)
    if found is not None and found.startswith("::ffff:"):
        mapped = IPv6Address(found).ipv4_mapped
        if mapped is not None:
            return str(mapped)
    return found


def split_qid(msg: str) -> tuple[str | None, str]:
    """``4ARHYEo8012345: rest`` -> (qid, rest); NOQUEUE and unprefixed lines give (None, msg).

    8.12+ ids are year/month/day/hour/minute/second letters, a two-letter sequence and the
    pid (14 characters with 6-digit pids, more with longer ones); 8.9-8.11 used 8-12.
    """
    if msg.startswith("NOQUEUE: "):
        return None, msg[9:]
    colon = msg.find(": ", 8, 22)
    if colon > 0:
        qid = msg[:colon]
        if qid.isalnum() and qid.isascii():
            return qid, msg[colon + 2 :]
    return None, msg


def host_addr(text: str, pos: int = 0) -> tuple[str, str | None, int] | None:
    """``name [addr]`` at ``pos`` -> (name, client, end); None when there is none there."""
    m = HOST_ADDR.match(text, pos)
    if m is None:
        return None
    return m.group(1) or "", ip(m.group(2)), m.end()


def relay_value(value: str) -> tuple[str, str | None]:
    """The value of a trailing ``relay=``: (name, client) for ``name [addr]``, (value, None) else.

    Relay values repeat (the same clients, MX hosts and MSP logins), so short ones are
    cached; a long one (hostile text) is read afresh and never kept.
    """
    if len(value) > _RELAY_CACHE_TEXT:
        return _relay_value(value)
    return _cached_relay_value(value)


def _relay_value(value: str) -> tuple[str, str | None]:
    m = HOST_ADDR.fullmatch(value)
    if m is None:
        return value, None
    return m.group(1) or "", ip(m.group(2))


_RELAY_CACHE_TEXT = 128
_cached_relay_value = lru_cache(maxsize=8192)(_relay_value)


@lru_cache(maxsize=4096)
def delay_seconds(text: str) -> float | None:
    m = _DELAY.fullmatch(text)
    if m is None:
        return None
    days = int(m.group(1) or 0)
    return float(days * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4)))


def split_reply(text: str) -> tuple[str, str, str]:
    """``550 5.7.1 <a>... Relaying denied`` -> ("550", "5.7.1", "<a>... Relaying denied")."""
    m = _REPLY.match(text)
    if m is None:
        return "", "", text
    return m.group(1), m.group(2) or "", text[m.end() :]


def reject_category(ruleset: str, dsn: str, detail: str) -> str:
    """Normalised reason; keywords are read after the echoed address (``<a>... text``)."""
    words = detail.rpartition("... ")[2].lower()
    if "relaying denied" in words or "relaying temporarily denied" in words:
        return "relay_denied"
    if any(w in words for w in _RBL_WORDS):
        return "rbl"
    if dsn == "5.1.1" or "user unknown" in words or "no such user" in words:
        return "unknown_user"
    if ruleset == "check_mail" or (dsn in ("5.1.8", "4.1.8", "5.1.7", "5.7.1") and "sender" in words):
        return "sender"
    return "other"


def split_recipients(text: str) -> list[str]:
    """``<a@x>,<b@y> [more]`` -> ["a@x", "b@y"]: Sendmail's own list, comma-separated."""
    if text.endswith(" [more]"):
        text = text[:-7]
    if "," not in text:
        one = bracketless(text.strip())
        return [one] if one else []
    out = []
    for raw in text.split(","):
        part = bracketless(raw.strip())
        if part:
            out.append(part)
    return out


def bracketless(addr: str) -> str:
    return addr[1:-1] if addr.startswith("<") and addr.endswith(">") else addr


def to_head(head: str) -> tuple[list[str], str, int | None]:
    """``<a@x>,<b@y>[, ctladdr=u (uid/gid)]`` (a to= line up to ``, delay=``) -> (recipients, u, uid)."""
    uid: int | None = None
    ctladdr = ""
    ctl_at = head.find(", ctladdr=")
    if ctl_at >= 0:
        ctladdr = head[ctl_at + 10 :]
        head = head[:ctl_at]
        um = CTLADDR_UID.search(ctladdr)
        if um is not None:
            uid = int(um.group(1))
            ctladdr = ctladdr[: um.start()]
    return split_recipients(head), ctladdr, uid


def handoff_qid(relay: str, mailer: str, status: str, reply: str) -> str | None:
    """The local MTA's queue id when a submission was relayed to it over loopback."""
    if status != "sent" or mailer != "relay" or not relay.endswith(LOOPBACK_RELAYS):
        return None
    qid, sep, text = reply.partition(" ")
    if sep and text.startswith("Message accepted for delivery") and split_qid(qid + ": x")[0]:
        return qid
    return None


def from_fields(rest: str) -> tuple[str, str, str, str | None, bool, bool] | None:
    """A from= line -> (sender, size, nrcpts, relay value or None, authenticated, MSA daemon).

    ``relay`` is the *last* ``relay=`` (only server fields follow it); ``authenticated``
    is an "A" in the protocol after its first four letters (ESMTPA, ESMTPSA); None when
    the line has no ``size=, class=, nrcpts=`` of digits.
    """
    m = _FROM_LINE.fullmatch(rest)
    if m is not None:
        sender, size, nrcpts, proto, daemon, relay = m.groups()
        if sender.startswith("<") and sender.endswith(">"):
            sender = sender[1:-1]
        return sender, size, nrcpts, relay, "A" in proto[4:], daemon.startswith("MSA")
    relay_at = rest.rfind(", relay=")
    end = relay_at if relay_at > 0 else len(rest)  # the fields before the last relay=
    size_at = rest.find(", size=", 0, end)
    if size_at < 0:
        return None
    # ``size=N, class=C, nrcpts=K``: the first three fields after the sender.
    fields = rest[size_at + 7 : end].split(", ", 3)
    if len(fields) < 3 or not fields[2].startswith("nrcpts="):
        return None
    size, nrcpts = fields[0], fields[2][7:]
    if not (size.isdigit() and nrcpts.isdigit() and len(size) < 19 and len(nrcpts) < 10):
        return None
    proto_at = rest.rfind(", proto=", 0, end)
    comma = rest.find(",", proto_at + 8, end)
    daemon_at = rest.rfind(", daemon=", 0, end)
    return (
        bracketless(rest[5:size_at]),
        size,
        nrcpts,
        rest[relay_at + 8 :] if relay_at > 0 else None,
        proto_at > 0 and "A" in rest[proto_at + 12 : comma if comma >= 0 else end],
        daemon_at > 0 and rest.startswith("MSA", daemon_at + 9, end),
    )
