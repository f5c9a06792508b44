"""Why a recipient is stuck, in the words an operator uses.

A Postfix delay reason looks like ``host mx.example[192.0.2.1] said: 421 4.7.0 ... (in reply
to RCPT TO command)``, ``connect to mx.example[192.0.2.1]:25: Connection refused`` or
``lost connection with mx.example[192.0.2.1] while sending RCPT TO``. The remote reply's meaning
comes from ``correlate.replies.classify_reply`` (shared with triage); the *who* -- which
blocklist, which big provider -- from the blocklist zone it names, the relay host name, the
provider's own reply wording (Gmail ends its replies with ``gsmtp``) and, last, the recipient's
domain. Substring and anchored patterns only: linear on hostile text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwarden.correlate.replies import blocklist_named, classify_reply

_RELAY = re.compile(
    r"(?:host|connect to|with|conversation with)\s+([A-Za-z0-9.\-_]{1,253})\[([0-9A-Fa-f:.]{2,45})\]"
)
_CODE = re.compile(r"(?:said:\s*|^)([245])\d\d[ -]")

#: (host-name or domain suffix, provider)
_PROVIDER_HOSTS = (
    ("google.com", "Gmail"),
    ("googlemail.com", "Gmail"),
    ("gmail.com", "Gmail"),
    ("yahoodns.net", "Yahoo"),
    ("yahoo.com", "Yahoo"),
    ("yahoo.co.uk", "Yahoo"),
    ("yahoo.fr", "Yahoo"),
    ("yahoo.de", "Yahoo"),
    ("ymail.com", "Yahoo"),
    ("aol.com", "Yahoo"),
    ("outlook.com", "Microsoft"),
    ("hotmail.com", "Microsoft"),
    ("hotmail.co.uk", "Microsoft"),
    ("hotmail.fr", "Microsoft"),
    ("live.com", "Microsoft"),
    ("msn.com", "Microsoft"),
    ("icloud.com", "Apple"),
    ("me.com", "Apple"),
    ("mac.com", "Apple"),
    ("gmx.net", "GMX/Web.de"),
    ("gmx.de", "GMX/Web.de"),
    ("web.de", "GMX/Web.de"),
    ("mail.ru", "Mail.ru"),
    ("yandex.net", "Yandex"),
    ("yandex.ru", "Yandex"),
)
#: provider fingerprints in reply text (lower-cased)
_PROVIDER_TEXT = (
    ("gsmtp", "Gmail"),
    ("support.google.com", "Gmail"),
    ("postmaster.yahooinc.com", "Yahoo"),
    ("[ts0", "Yahoo"),
    ("tss04", "Yahoo"),
    ("protection.outlook.com", "Microsoft"),
    ("outlook.com", "Microsoft"),
    ("hotmail.com", "Microsoft"),
    ("[s3150]", "Microsoft"),
    ("[s3140]", "Microsoft"),
    ("[s775]", "Microsoft"),
    ("icloud.com", "Apple"),
)

#: rate/volume wordings classify_reply does not know yet (Yahoo's TSS04 "unexpected volume or user
#: complaints", "too many connections"); checked only when it answers "other"
_MORE_RATE = ("unexpected volume", "temporarily deferred due to", "too many connections", "[tss0", "[ts0")

GROUP_ORDER = ("blocklist", "spam", "rate_limit", "unknown_user", "mailbox_full", "connection", "other")


@dataclass(frozen=True, slots=True)
class Deferral:
    """One recipient's delay reason, explained."""

    category: str  # one of correlate.replies.REPLY_CATEGORIES
    label: str  # the group shown to the operator, e.g. "blocklisted by zen.spamhaus.org"
    relay: str | None = None
    provider: str | None = None
    blocklist: str | None = None
    temporary: bool | None = None  # 4xx (True), 5xx (False), unknown (None)


def _provider_for_host(host: str) -> str | None:
    host = host.lower().rstrip(".")
    for suffix, name in _PROVIDER_HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return name
    return None


def provider(delay_reason: str, recipient_domain: str = "") -> str | None:
    """Gmail, Yahoo, Microsoft, ... from the relay name, the reply text or the recipient domain."""
    m = _RELAY.search(delay_reason)
    if m and (p := _provider_for_host(m.group(1))):
        return p
    text = delay_reason.lower()
    for needle, name in _PROVIDER_TEXT:
        if needle in text:
            return name
    return _provider_for_host(recipient_domain) if recipient_domain else None


def explain(delay_reason: str, recipient_domain: str = "") -> Deferral:
    """Group one delay reason; '' (not tried yet) is its own group."""
    reason = delay_reason[:2000]
    if not reason.strip():
        return Deferral("other", "not tried yet / no reason recorded")
    category = classify_reply(reason)
    if category == "other" and any(w in reason.lower() for w in _MORE_RATE):
        category = "rate_limit"
    m = _RELAY.search(reason)
    relay = None
    if m:
        relay = m.group(1) if m.group(1).lower() != "unknown" else m.group(2)
    code = _CODE.search(reason)
    temporary = None if code is None else code.group(1) == "4"
    prov = provider(reason, recipient_domain)
    who = prov or (relay if relay and not relay.replace(".", "").isdigit() and ":" not in relay else None)
    who = who or recipient_domain or relay or "the remote server"
    blocklist = None
    if category == "blocklist":
        blocklist = blocklist_named(reason) or None
        label = f"blocklisted by {blocklist}" if blocklist else f"blocklisted (at {who})"
    elif category in ("spam", "rate_limit"):
        rate_words = ("rate limit", "rate-limit", "unusual rate", "too many", "throttl")
        if temporary is not False and (
            category == "rate_limit" or any(w in reason.lower() for w in rate_words)
        ):
            label = f"rate-limited by {who}"
        else:
            label = f"rejected as spam by {who}"
    elif category == "unknown_user":
        label = "unknown user"
    elif category == "mailbox_full":
        label = "mailbox full"
    elif category == "connection":
        label = f"connection failure ({who})"
    else:
        label = "other"
    return Deferral(category, label, relay, prov, blocklist, temporary)
