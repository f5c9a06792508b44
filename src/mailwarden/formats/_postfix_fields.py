"""Field splitters shared by the Postfix daemons' parsers.

Postfix lines mix text the server wrote (queue ids, ``name[addr]``, counters)
with text a client chose (envelope addresses, HELO names, header values,
SASL user names). Every splitter here anchors on the server-written part and
treats the rest as opaque strings; none of them uses a regular expression that
can backtrack more than linearly, because hostile clients control line length.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mailwarden.formats.base import normalise_ip as _normalise_ip
from mailwarden.model import Event

# The shared "understood, nothing to report" answer: immutable, never allocated per line.
NOTHING: tuple[Event, ...] = ()
# Generic diagnostics every daemon may log; none names a client or a message's fate.
QUIET = (
    "warning: ",
    "fatal: ",
    "panic: ",
    "error: ",
    "table ",
    "using backwards-compatible default setting ",
)

# Client addresses repeat endlessly in mail logs and ipaddress parsing is the
# costliest step per line; the LRU bound keeps address floods from growing it.
normalise_ip = lru_cache(maxsize=8192)(_normalise_ip)

_HEX = "0123456789ABCDEF"
_SAFE = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"  # global/safe_ultostr.c
_PORT = re.compile(r":\d{1,5}", re.ASCII)
# name[addr] or name[addr]:port with no bracket or blank inside either part.
_NAMADDR = re.compile(r"([^\[\]\s]*)\[([^\[\]\s]*)\](?::\d{1,5})?", re.ASCII)
_DSN = re.compile(r"([245]\.\d{1,3}\.\d{1,3})(?: |$)", re.ASCII)

# log_whatsup() and postscreen append "; from=<..> to=<..> proto=.. helo=<..>" to the reply.
_TAIL_MARKERS = ("; from=<", "; to=<", "; proto=", "; helo=<")
_SENDER_STOPS = ("> to=<", ">, to=<", "> proto=", ">, proto=", "> helo=<", ">, helo=<")
_RCPT_STOPS = ("> proto=", ">, proto=", "> helo=<", ">, helo=<")


def is_small_int(text: str) -> bool:
    """ASCII digits that int() accepts without hitting its digit limit."""
    return 0 < len(text) <= 9 and text.isascii() and text.isdigit()


def is_queue_id(token: str) -> bool:
    """True for a short (hex) or long (``enable_long_queue_ids``) Postfix queue id.

    Short ids are upper-case hex: five digits of microseconds plus the inode.
    Long ids use a vowel-free base-52 alphabet: the time, a ``z`` separator and
    the inode in base 51 (no ``z``); with no vowels allowed, words such as
    ``NOQUEUE``, ``warning`` or ``statistics`` can never pass for one.
    """
    n = len(token)
    if 6 <= n <= 20 and not token.strip(_HEX):
        return True
    return 12 <= n <= 32 and not token.strip(_SAFE) and 0 < token.rfind("z") < n - 1


def split_queue_id(msg: str) -> tuple[str, str] | None:
    """``("94B6920C940", rest)`` for ``"94B6920C940: rest"``; NOQUEUE is returned as is."""
    i = msg.find(": ", 0, 40)
    if i <= 0:
        return None
    head = msg[:i]
    if head == "NOQUEUE" or is_queue_id(head):
        return head, msg[i + 2 :]
    return None


@lru_cache(maxsize=32)
def _close_re(delims: tuple[str, ...], at_end: bool) -> re.Pattern[str]:
    """``]`` (plus an optional ``:port``) directly followed by a delimiter."""
    ahead = [re.escape(d) for d in delims] + ([r"\Z"] if at_end else [])
    return re.compile(r"\](?::\d{1,5})?(?=" + "|".join(ahead) + ")", re.ASCII)


def namaddr(
    text: str, start: int, delims: tuple[str, ...], at_end: bool = False
) -> tuple[str, str | None, int] | None:
    """Split the server-written ``name[addr]`` (or ``name[addr]:port``) at ``start``.

    The address is the LAST ``[...]`` that ends immediately before one of
    ``delims`` (or the end of ``text`` when ``at_end``). Postfix only logs
    validated host names, but a forged PTR like ``evil[6.6.6.6]`` must still
    never win over the real address, and the attacker-typed text that follows
    the delimiter is never looked at. Returns ``(name, ip_or_None, end)``, where
    ``end`` indexes the delimiter; ``ip`` is None for ``unknown`` addresses.
    """
    m = _NAMADDR.match(text, start)
    if m is not None:
        end = m.end()
        # str.startswith takes the tuple of delimiters at once (False for none).
        if at_end if end == len(text) else text.startswith(delims, end):
            # Common case: no brackets in the name, so this "]" is the first one.
            return m[1], normalise_ip(m[2]), end
    close = _close_re(delims, at_end).search(text, start)
    if close is None:
        return None
    j = close.start()
    lb = text.rfind("[", start, j)
    if lb < 0:
        return None
    return text[start:lb], normalise_ip(text[lb + 1 : j]), close.end()


def bracket_addr(text: str, start: int) -> tuple[str | None, int] | None:
    """Postscreen's ``[addr]:port`` at ``start``: ``(ip_or_None, end)``."""
    if not text.startswith("[", start):
        return None
    j = text.find("]", start)
    if j < 0:
        return None
    m = _PORT.match(text, j + 1)
    end = m.end() if m else j + 1
    return normalise_ip(text[start + 1 : j]), end


def split_reply_tail(text: str) -> tuple[str, str]:
    """Split ``reply; from=<..> ...`` into the reply and the envelope tail.

    The reply itself may contain ``;`` (DNSBL texts do), so the cut is the
    first ``;`` that starts one of the tail fields Postfix appends.
    """
    best = -1
    for marker in _TAIL_MARKERS:
        i = text.find(marker)
        if i >= 0 and (best < 0 or i < best):
            best = i
    if best < 0:
        return (text[:-1], "") if text.endswith(";") else (text, "")
    return text[:best], text[best + 2 :]


def _first(text: str, stops: tuple[str, ...], pos: int) -> int:
    best = -1
    for stop in stops:
        i = text.find(stop, pos)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


def tail_fields(tail: str) -> tuple[str, str, str]:
    """``(sender, recipient, helo)`` from ``from=<s> to=<r> proto=P helo=<h>``.

    All three are client-chosen text that may itself contain ``>`` or field
    names; the split is best effort and the values are only ever strings.
    """
    sender = recipient = helo = ""
    pos = 0
    if tail.startswith("from=<"):
        end = _first(tail, _SENDER_STOPS, 6)
        if end < 0:
            end = tail.rfind(">")
            end = len(tail) if end < 6 else end
        sender, pos = tail[6:end], end + 1
    i = tail.find("to=<", pos)
    if i >= 0 and (i == pos or tail[pos:i].strip(", ") == ""):
        end = _first(tail, _RCPT_STOPS, i + 4)
        if end < 0:
            end = tail.rfind(">")
            end = len(tail) if end < i + 4 else end
        recipient, pos = tail[i + 4 : end], end + 1
    i = tail.find("helo=", pos)
    if i >= 0:
        if tail.startswith("<", i + 5):
            end = tail.find("> sasl_", i + 6)
            if end < 0:
                end = tail.rfind(">")
            helo = tail[i + 6 : end] if end >= i + 6 else tail[i + 6 :]
        else:
            helo = tail[i + 5 :]
    return sender, recipient, helo


def split_reply(reply: str) -> tuple[str, str, str]:
    """``("554", "5.7.1", "<x>: Relay access denied")`` from an SMTP reply text."""
    code = ""
    rest = reply
    if len(reply) >= 4 and reply[3] == " " and reply[:3].isdecimal():
        code, rest = reply[:3], reply[4:]
    m = _DSN.match(rest)
    if m is None:
        return code, "", rest
    return code, m.group(1), rest[m.end() :]


def reject_category(detail: str) -> str:
    """Normalised reason of a Postfix reject reply (see ``Rejected.category``).

    A leading ``<address>: `` is the client's own text quoted back, so it is
    skipped before looking for Postfix's fixed phrases.
    """
    text = detail
    if text.startswith("<"):
        i = text.find(">: ")
        if i >= 0:
            text = text[i + 3 :]
    if "Relay access denied" in text:
        return "relay_denied"
    if " blocked using " in text:
        return "rbl"
    if "User unknown" in text or "undeliverable address" in text:
        return "unknown_user"
    if "Helo command rejected" in text:
        return "helo"
    if "Sender address rejected" in text:
        return "sender"
    return "other"


_AUTH_FAILURES: dict[str, int] = {}


def auth_failures(stats: str) -> int:
    """Failed AUTH commands from ``disconnect`` statistics: ``auth=1/3`` means 2.

    Memoised (bounded in entries and key length): a server writes a few
    hundred distinct statistics lines, one per disconnect.
    """
    found = _AUTH_FAILURES.get(stats)
    if found is None:
        found = _auth_failures(stats)
        if len(stats) <= 200:
            if len(_AUTH_FAILURES) >= 1024:
                _AUTH_FAILURES.clear()
            _AUTH_FAILURES[stats] = found
    return found


def _auth_failures(stats: str) -> int:
    i = stats.find("auth=")
    while i > 0 and stats[i - 1] != " ":
        i = stats.find("auth=", i + 5)
    if i < 0:
        return 0
    end = stats.find(" ", i)
    value = stats[i + 5 : end if end >= 0 else len(stats)]
    ok, slash, total = value.partition("/")
    if not slash or not is_small_int(ok) or not is_small_int(total):
        return 0
    return max(int(total) - int(ok), 0)
