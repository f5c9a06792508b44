"""The JSON document of ``mailwarden triage --format json`` (schema: docs/json-schema.md)."""

from __future__ import annotations

from mailwarden import __version__
from mailwarden.pipeline import TriageResult

SCHEMA_VERSION = 1


def verdict(result: TriageResult) -> str:
    if not result.incidents:
        return "clean"
    return result.incidents[0].severity


def to_dict(result: TriageResult) -> dict[str, object]:
    stats = result.stats.to_dict()
    stats["messages"] = result.totals.to_dict()
    stats["still_queued_at_end"] = result.still_queued
    stats["dropped_state"] = dict(result.dropped)
    return {
        "schema": SCHEMA_VERSION,
        "mailwarden": __version__,
        "verdict": verdict(result),
        "window": {
            "first": result.first_ts.isoformat() if result.first_ts else None,
            "last": result.last_ts.isoformat() if result.last_ts else None,
        },
        "incidents": [i.to_dict() for i in result.incidents],
        "accounts": result.accounts,
        "sources": {"files": list(result.stats.files), "geoip": result.geo},
        "stats": stats,
    }
