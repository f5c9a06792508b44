"""Field splitters for Exim 4 log lines.

Exim writes ``key=value`` fields separated by single spaces, but several
values are text a client chose: the envelope sender after ``<=`` or in
``F=<..>``, recipients, the HELO name inside ``H=``, the message id (``id=``),
the subject (``T="..."``) and the SASL id after ``A=name:``. Addresses are
canonicalised by Exim, so a local part with blanks or specials is always
double-quoted; the splitters skip quoted strings instead of searching through
them, and every search anchors on text Exim itself wrote. No regular
expression here can backtrack more than linearly.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mailwarden.formats.base import normalise_ip as _normalise_ip

MESSAGE_ID = re.compile(
    r"[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4})(?= |\Z)", re.ASCII
)
_MAX_ADDR = 64
# ``[addr]`` or ``[addr]:port`` followed by what Exim writes after it in H= (a blank, ``:``
# or the end: host_and_ident(), add_host_info_for_log()). The address is up to _MAX_ADDR
# characters without blanks or brackets; the port's digits are taken possessively (a sixth
# digit fails the match rather than shortening the port). No backtracking beyond linear.
_BRACKET = re.compile(r"\[([^\] \[]{0,64})\](?::([0-9]{1,5}+))?+(?=[ :]|\Z)")
# "550 5.7.1 ..." / "550-5.7.1 ...": the code, and the enhanced status when it is the whole first word.
_REPLY = re.compile(r"([0-9]{3})[ -](?:([245]\.[0-9]{1,3}\.[0-9]{1,3})(?= |\Z))?")


@lru_cache(maxsize=8192)
def _cached_ip(text: str) -> str | None:
    ip = _normalise_ip(text)
    if ip is not None and ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    if ip is not None and ip.startswith("::ffff:"):
        # str(IPv6Address) writes the mapped form in hex on Python < 3.13.
        tail = ip[7:].split(":")
        if len(tail) == 2 and all(0 < len(p) <= 4 for p in tail):
            try:
                hi, lo = int(tail[0], 16), int(tail[1], 16)
            except ValueError:
                return ip
            return f"{hi >> 8}.{hi & 255}.{lo >> 8}.{lo & 255}"
    return ip


def ip_of(text: str) -> str | None:
    """A server-written address in canonical form (IPv4-mapped IPv6 as IPv4), or None."""
    return _cached_ip(text) if 0 < len(text) <= _MAX_ADDR else None


def is_message_id(text: str, start: int = 0) -> int:
    """Length of the Exim message id at ``start`` followed by a blank (or the end), else 0.

    Before 4.97: ``1rAbcD-0001Xy-Ab`` (6-6-2 base-62); from 4.97 on,
    ``1rAbcD-000000001Xy-AbCd`` (6-11-4).
    """
    if text[start + 6 : start + 7] != "-":
        return 0
    m = MESSAGE_ID.match(text, start)
    return m.end() - start if m else 0


def skip_address(text: str, pos: int, stop: str) -> int:
    """Index of the first ``stop`` character at or after ``pos`` outside a quoted string.

    Exim quotes a local part that holds blanks or specials (``"a b"@x``),
    with ``\\`` escaping inside the quotes. -1 when ``stop`` never comes.
    """
    found = text.find(stop, pos)
    quote = text.find('"', pos, found if found >= 0 else len(text))
    if quote < 0:
        return found  # the common case: no quoted local part before the stop
    n = len(text)
    i = quote
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n:
                cj = text[j]
                if cj == "\\":
                    j += 2
                    continue
                if cj == '"':
                    break
                j += 1
            if j >= n:
                return -1
            i = j + 1
            continue
        if ch == stop:
            return i
        i += 1
    return -1


def end_of_quoted(text: str, pos: int) -> int:
    """``text[pos]`` is ``"``: index just after the closing quote (``\\`` escapes), or -1."""
    j = text.find('"', pos + 1)
    while j >= 0:
        k = j
        while k > pos + 1 and text[k - 1] == "\\":
            k -= 1
        if (j - k) % 2 == 0:  # an even run of backslashes escapes only itself
            return j + 1
        j = text.find('"', j + 1)
    return -1


def unquote(text: str) -> str:
    """The content of a ``"..."`` value as Exim escaped it (``\\"`` and ``\\\\``)."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_host(text: str, start: int) -> tuple[str, str, str | None, int, str] | None:
    """The ``H=`` value at ``start`` (just after ``H=``): ``(name, helo, ip, end, port)``.

    Exim writes ``[name ][(helo) ][addr]`` where ``addr`` is ``[ip]`` or
    ``[ip]:port`` (host_build_sender_fullhost). The name is a verified DNS
    name and the HELO the client's text. The address is the first ``[..]``
    that comes where Exim puts it: right after ``H=``, after the name, or after
    the ``) `` that closes the HELO, and that is followed by a blank, ``:`` or
    the end. A HELO such as ``x [198.51.100.9]`` therefore never yields an
    address. ``end`` indexes what follows the address; ``ip`` is None when the
    bracket does not hold an address.
    """
    n = len(text)
    pos = start
    name = ""
    helo = ""
    if pos < n and text[pos] not in "([":
        sp = text.find(" ", pos)
        if sp < 0:
            return None
        name = text[pos:sp]
        pos = sp + 1
    if pos < n and text[pos] == "(":
        # The HELO ends at the first ") [" whose bracket is followed the way Exim writes it.
        look = pos + 1
        while True:
            close = text.find(") [", look)
            if close < 0:
                return None
            found = _bracket(text, close + 2)
            if found is not None:
                helo = text[pos + 1 : close]
                ip, end, port = found
                return name, helo, ip, end, port
            look = close + 1
    if pos < n and text[pos] == "[":
        found = _bracket(text, pos)
        if found is None:
            return None
        ip, end, port = found
        return name, helo, ip, end, port
    return None


def _bracket(text: str, pos: int) -> tuple[str | None, int, str] | None:
    """``[ip]`` or ``[ip]:port`` at ``pos`` followed by a blank, ``:`` or the end."""
    m = _BRACKET.match(text, pos)
    if m is None:
        return None
    inner = m[1]
    return (_cached_ip(inner) if inner else None), m.end(), m[2] or ""


def field(text: str, key: str, start: int = 0, end: int = -1) -> str | None:
    """The blank-free value of `` key=`` in ``text[start:end]``, or None."""
    stop = len(text) if end < 0 else end
    at = text.find(f" {key}=", start, stop)
    if at < 0:
        return None
    vstart = at + len(key) + 2
    sp = text.find(" ", vstart, stop)
    return text[vstart : sp if sp >= 0 else stop]


def split_reply(reply: str) -> tuple[str, str]:
    """``("550", "5.7.1")`` from ``550 5.7.1 ...`` or ``550-5.7.1 ...``; blanks when absent."""
    m = _REPLY.match(reply)
    if m is None:
        return "", ""
    return m[1], m[2] or ""


__all__ = [
    "MESSAGE_ID",
    "end_of_quoted",
    "field",
    "ip_of",
    "is_message_id",
    "parse_host",
    "skip_address",
    "split_reply",
    "unquote",
]
