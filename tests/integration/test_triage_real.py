"""`mailwarden triage` on logs that real Postfix and Dovecot daemons wrote.

Two sources of real logs: the recorded sample incidents under examples/ (fast,
always run) and a fresh replay of the sample incident on a real stack started
by the test (tools/play_incident.py), so that a change in what the installed
daemons write is caught. The expected results come from truth.json, which the
player writes from what it played, not from our own output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mailstack import require_mailstack

from mailwarden.model import ReadStats
from mailwarden.pipeline import events_from, triage
from mailwarden.report.json_report import to_dict

ROOT = Path(__file__).resolve().parents[2]
GEO = str(ROOT / "examples" / "lab-geo.mmdb")
sys.path.insert(0, str(ROOT / "tools"))

pytestmark = pytest.mark.integration


def _by_kind(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for inc in doc["incidents"]:
        out.setdefault(inc["kind"], []).append(inc)
    return out


def check_sample(directory: Path) -> None:
    truth = json.loads((directory / "truth.json").read_text())
    doc = to_dict(triage([str(directory)], geoip_paths=[GEO]))
    kinds = _by_kind(doc)
    assert sorted(kinds) == ["brute_force", "compromised_account", "password_spray"], doc["incidents"]

    [bob] = kinds["compromised_account"]
    assert bob["subject"] == {"account": "bob@lab.test"}
    assert bob["path"] == "smtp_auth"
    assert bob["severity"] == "critical"
    assert {"IN", "IT", "BR", "NG"} <= set(bob["countries"])
    played = truth["actors"]["bob"]["by_ip"]
    spam_msgs = sum(c.get("messages", 0) for ip, c in played.items() if not ip.startswith("192.0.2."))
    spam_bounced = sum(
        c.get("rcpt_block", 0) + c.get("rcpt_nouser", 0)
        for ip, c in played.items()
        if not ip.startswith("192.0.2.")
    )
    assert bob["messages"] == spam_msgs
    assert bob["bounced"] == spam_bounced
    assert bob["deferred"] > 0
    assert (
        bob["failed_logins"]
        == truth["actors"]["bob"]["counts"]["imap_failed"]
        + truth["actors"]["bob"]["counts"]["smtp_auth_failed"]
    )
    assert bob["queued_ids"]

    [brute] = kinds["brute_force"]
    assert brute["subject"]["ip"] == "198.51.100.23"
    assert brute["countries"] == ["RU"]
    counts = truth["actors"]["brute-ru"]["counts"]
    assert brute["failed_logins"] == counts["imap_failed"] + counts["smtp_auth_failed"]

    [spray] = kinds["password_spray"]
    assert spray["subject"]["ip"] == "198.51.100.150"
    assert len(spray["subject"]["accounts"]) == 12

    # being targeted (listed in a sprayer's accounts) is not being flagged
    flagged_accounts = {i["subject"].get("account") for i in doc["incidents"]}
    flagged_ips = {i["subject"].get("ip") for i in doc["incidents"]}
    for name, actor in truth["actors"].items():
        if not actor["should_be_flagged"]:
            assert f"{name}@lab.test" not in flagged_accounts, f"{name} must not be flagged"
            assert not flagged_ips & set(actor.get("ips", [])), f"{name}'s addresses must not be flagged"


def check_every_line_read(directory: Path) -> None:
    stats = ReadStats()
    n = sum(1 for _ in events_from([str(directory)], stats))
    assert n > 0
    not_understood = [(r.source.file, r.source.line, r.program, r.message) for r in stats.unparsed_samples]
    assert stats.unparsed == {}, not_understood[:20]
    assert stats.unclaimed == {}, stats.unclaimed
    assert dict(stats.skipped) == {}, stats.skipped
    assert stats.records == stats.lines_read


def check_injection(directory: Path) -> None:
    doc = to_dict(triage([str(directory)], geoip_paths=[GEO]))
    kinds = _by_kind(doc)
    assert "unauthenticated_injection" in kinds and "web_script" in kinds, doc["incidents"]
    [telnet] = kinds["unauthenticated_injection"]
    assert telnet["subject"]["ip"] == "127.0.0.1"
    assert telnet["path"] == "unauthenticated_smtp"
    assert telnet["messages"] == 25
    assert any("raw SMTP" in r for r in telnet["reasons"])  # the pipelining lines Postfix wrote
    scripts = {i["subject"]["script"]: i for i in kinds["web_script"]}
    assert "contact.php" in scripts
    assert all(i["subject"]["uid"] == 33 and i["path"] == "local_submission" for i in kinds["web_script"])
    assert sum(i["messages"] for i in kinds["web_script"]) == 40
    assert "open_relay" not in kinds  # the relay attempts were refused


def test_recorded_sample_incident() -> None:
    check_sample(ROOT / "examples" / "incident")
    check_every_line_read(ROOT / "examples" / "incident")


def test_recorded_injection() -> None:
    check_injection(ROOT / "examples" / "injection")
    check_every_line_read(ROOT / "examples" / "injection")


@pytest.mark.slow
def test_live_replay(tmp_path: Path) -> None:
    require_mailstack()
    import play_incident

    play_incident.run("sample", tmp_path / "sample", seed=2)
    check_sample(tmp_path / "sample")
    check_every_line_read(tmp_path / "sample")
    play_incident.run("injection", tmp_path / "injection", seed=2)
    check_injection(tmp_path / "injection")
    check_every_line_read(tmp_path / "injection")
