"""Which blocklist a remote server's rejection cites ("blocked using zen.spamhaus.org").

For the triage timeline: a bounce that names a list becomes "listed on
Spamhaus ZEN -- here is how to get off". Remote replies are attacker-reachable
free text, so matching is plain substring search on a lower-cased, length-capped
copy (linear time), with word boundaries so that "sorbs" does not match
"absorbs". The longest matching pattern wins: "dbl.spamhaus.org" beats
"spamhaus"; ties go to the list that comes first in the data file.
"""

from __future__ import annotations

from functools import lru_cache

from mailwarden.intel.dnsbl.zones import Catalogue, ZoneInfo, load_catalogue

_MAX_REPLY = 4096


@lru_cache(maxsize=1)
def _bundled() -> Catalogue:
    return load_catalogue()


def zone_for_reply(reply_text: str, catalogue: Catalogue | None = None) -> ZoneInfo | None:
    """The curated list a remote reply text cites, or None. Retired lists are matched too."""
    text = reply_text[:_MAX_REPLY].lower()
    if not text:
        return None
    best: tuple[int, int] | None = None
    found: ZoneInfo | None = None
    for order, zone in enumerate((catalogue or _bundled()).lists):
        for pattern in zone.reply_patterns:
            if _contains_word(text, pattern):
                rank = (len(pattern), -order)
                if best is None or rank > best:
                    best, found = rank, zone
    return found


def _contains_word(text: str, pattern: str) -> bool:
    start = 0
    n = len(pattern)
    while True:
        i = text.find(pattern, start)
        if i < 0:
            return False
        before = text[i - 1] if i else " "
        after = text[i + n] if i + n < len(text) else " "
        if not (before.isalnum() or before == "-") and not (after.isalnum() or after == "-"):
            return True
        start = i + 1
