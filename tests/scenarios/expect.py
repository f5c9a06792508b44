"""What the compromised-account play must produce, on every MTA: one place for the contract."""

from __future__ import annotations

from typing import Any


def compromised_incident(doc: dict[str, Any]) -> dict[str, Any]:
    """Assert the ``plays.compromised`` incident (and nothing else) in a triage JSON document."""
    assert [i["kind"] for i in doc["incidents"]] == ["compromised_account"], [
        i["summary"] for i in doc["incidents"]
    ]
    inc: dict[str, Any] = doc["incidents"][0]
    assert inc["subject"] == {"account": "bob@example.com"}
    assert inc["path"] == "smtp_auth"
    assert inc["severity"] == "critical"
    assert {"IN", "IT", "BR", "NG"} <= set(inc["countries"])
    assert inc["messages"] == 120
    assert inc["recipients"] == 600
    assert inc["bounced"] > 0 and inc["deferred"] > 0
    assert inc["failed_logins"] == 3
    whats = [e["what"] for e in inc["timeline"]]
    assert whats[0].startswith("failed login")
    assert any(x.startswith("first bounce") for x in whats)
    assert any("complaint" in x for x in whats)
    assert any(x.startswith("rejected citing blocklist Spamhaus ZEN") for x in whats)
    assert any("mailwarden dnsbl check" in a for a in inc["recommended_actions"])
    assert any("password" in a.lower() for a in inc["recommended_actions"])
    assert inc["queued_ids"], "deferred spam should still be queued at the end"
    files = set(doc["sources"]["files"])
    assert all(e["file"] in files and e["line"] > 0 for e in inc["evidence"])
    assert doc["verdict"] == "critical"
    return inc
