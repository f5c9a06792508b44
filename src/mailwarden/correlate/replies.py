"""What a remote server's reply means, in the words an operator uses.

Remote replies are free text written by the receiving MTA (Gmail, Yahoo,
Microsoft, a DNSBL-checking Postfix...). The categories below are what the
playbook needs: a blocklist citation means "check the DNSBLs and request
delisting", a spam/rate complaint means "this looks like spam to them".
Patterns are plain substring checks on a lower-cased copy: linear, and safe on
hostile input.
"""

from __future__ import annotations

from functools import lru_cache

_BLOCKLIST = (
    "blocked using",
    "blocklist",
    "block list",
    "blacklist",
    "black list",
    "denylist",
    "spamhaus",
    "spamcop",
    "barracuda",
    "sorbs",
    "uceprotect",
    "dnsbl",
    " rbl",
    "listed at",
    "listed in",
    "blocked by",
)
_SPAM = (
    "spam",
    "unsolicited",
    "junk",
    "bulk mail",
    "reputation",
    "abuse",
    "rejected for policy reasons",
    "content rejected",
    "message rejected as",
)
_RATE = (
    "rate limit",
    "rate-limit",
    "ratelimit",
    "too many messages",
    "unusual rate",
    "throttl",
    "try again later",
    "unexpected volume",
    "[tss0",
)
_UNKNOWN_USER = (
    "user unknown",
    "unknown user",
    "does not exist",
    "no such user",
    "mailbox unavailable",
    "recipient address rejected",
    "invalid recipient",
    "5.1.1",
)
_FULL = ("over quota", "mailbox full", "quota exceeded", "insufficient storage", "4.2.2", "5.2.2")
_CONNECT = (
    "connection refused",
    "connection timed out",
    "no route to host",
    "network is unreachable",
    "lost connection",
    "host not found",
    "name service error",
)

REPLY_CATEGORIES = (
    "blocklist",
    "spam",
    "rate_limit",
    "unknown_user",
    "mailbox_full",
    "connection",
    "other",
)


def classify_reply(reply: str) -> str:
    """Put a remote reply into one of REPLY_CATEGORIES; blocklist wins over spam wins over rate.

    Memoised: the correlator and up to two detectors ask about the same reply
    of the same delivery, and remote servers repeat their texts. Remote
    servers also choose the length, so only replies up to ``_MEMO_LEN``
    characters are kept (at most ``_MEMO_SIZE`` of them).
    """
    if len(reply) > _MEMO_LEN:
        return _classify(reply)
    return _classify_memo(reply)


def _classify(reply: str) -> str:
    text = reply.lower()
    if any(s in text for s in _BLOCKLIST):
        return "blocklist"
    if "unusual rate of unsolicited" in text:
        return "spam"
    if any(s in text for s in _SPAM):
        return "spam"
    if any(s in text for s in _RATE):
        return "rate_limit"
    if any(s in text for s in _UNKNOWN_USER):
        return "unknown_user"
    if any(s in text for s in _FULL):
        return "mailbox_full"
    if any(s in text for s in _CONNECT):
        return "connection"
    return "other"


_MEMO_LEN = 1000
_MEMO_SIZE = 1024
_classify_memo = lru_cache(maxsize=_MEMO_SIZE)(_classify)


def blocklist_named(reply: str) -> str:
    """The blocklist zone a reply names (``zen.spamhaus.org``), or '' when it names none."""
    text = reply.lower()
    idx = text.find("blocked using ")
    if idx < 0:
        for name in ("spamhaus", "spamcop", "barracuda", "sorbs", "uceprotect"):
            if name in text:
                return name
        return ""
    rest = text[idx + len("blocked using ") :]
    end = 0
    while end < len(rest) and end < 253 and (rest[end].isalnum() or rest[end] in ".-_"):
        end += 1
    return rest[:end].rstrip(".")
