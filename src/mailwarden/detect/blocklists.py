"""Which blocklist a remote rejection cites, in the words of the curated catalogue.

Detectors call this only once per distinct list and culprit (the callers key
by the zone name in the reply), so the catalogue scan stays off the hot path.
The result feeds the incident timeline ("rejected citing Spamhaus ZEN") and
the delisting step of the playbook.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.correlate.replies import blocklist_named
from mailwarden.intel.dnsbl.replies import zone_for_reply


@dataclass(frozen=True, slots=True)
class CitedList:
    key: str
    label: str
    delisting: str


def cited_list(reply: str) -> CitedList | None:
    """The list a reply cites, with its delisting page when the catalogue knows it."""
    zone = zone_for_reply(reply)
    if zone is not None:
        label = f"{zone.title or zone.name} ({zone.zone})"
        return CitedList(zone.name, label, zone.delisting or zone.lookup or "")
    named = blocklist_named(reply)
    return CitedList(named, named, "") if named else None
