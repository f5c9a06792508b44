"""Each detector fires on its scenario, and the benign corpus stays silent.

Scenarios are timelines spread over hours and days (see logwriter.py), run
through the whole pipeline (framing, formats, correlation, detectors) with
the lab GeoIP database that maps documentation ranges to countries.
Assertions are on the contract fields of the JSON output only.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mailwarden.pipeline import triage
from mailwarden.report.json_report import to_dict
from tests.scenarios.expect import compromised_incident
from tests.scenarios.logwriter import LogWriter
from tests.scenarios.plays import OFFICE, T0, benign, compromised

GEO = str(Path(__file__).parents[1] / "data" / "lab-geo.mmdb")
MTIME = datetime(2026, 11, 28, 12, 0, 0).timestamp()


def run(tmp_path: Path, w: LogWriter) -> dict:
    log = tmp_path / "mail.log"
    log.write_text(w.text(), encoding="utf-8")
    os.utime(log, (MTIME, MTIME))
    result = triage([str(log)], geoip_paths=[GEO])
    doc = to_dict(result)
    assert doc["stats"]["unparsed"] == {}, doc["stats"]["unparsed"]
    return doc


def kinds(doc: dict) -> list[str]:
    return [i["kind"] for i in doc["incidents"]]


def test_benign_corpus_is_silent(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    doc = run(tmp_path, w)
    assert doc["incidents"] == [], [i["summary"] for i in doc["incidents"]]
    assert doc["verdict"] == "clean"
    news = next(a for a in doc["accounts"] if a["account"] == "news@example.com")
    assert news["messages"] == 600


def test_compromised_account(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    compromised(w)
    doc = run(tmp_path, w)
    inc = compromised_incident(doc)
    assert all(e["file"].endswith("mail.log") for e in inc["evidence"])


def test_brute_force(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=3)
    for k in range(30):
        w.smtp_auth_fail(t + timedelta(seconds=40 * k), "198.51.100.23", "carol@example.com")
    doc = run(tmp_path, w)
    assert kinds(doc) == ["brute_force"]
    inc = doc["incidents"][0]
    assert inc["subject"]["ip"] == "198.51.100.23"
    assert inc["failed_logins"] == 30  # Postfix and Dovecot both log each try: counted once
    assert inc["countries"] == ["RU"]


def test_password_spray(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=4)
    for k in range(12):
        w.imap_fail(t + timedelta(seconds=60 * k), "198.51.100.150", f"user{k}@example.com")
    doc = run(tmp_path, w)
    assert kinds(doc) == ["password_spray"]
    inc = doc["incidents"][0]
    assert inc["subject"]["ip"] == "198.51.100.150"
    assert len(inc["subject"]["accounts"]) == 12
    assert inc["countries"] == ["CN"]


def test_distributed_attack(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=5)
    ips = [f"203.0.113.{i}" for i in (11, 75, 141, 201, 12, 76, 142, 202)]
    for k in range(3):
        for j, ip in enumerate(ips):
            w.smtp_auth_fail(t + timedelta(minutes=10 * k, seconds=7 * j), ip, "dave@example.com")
    doc = run(tmp_path, w)
    assert kinds(doc) == ["distributed_attack"]
    inc = doc["incidents"][0]
    assert inc["subject"]["account"] == "dave@example.com"
    assert inc["failed_logins"] == 24
    assert set(inc["countries"]) == {"IN", "IT", "BR", "NG"}


def test_unauthenticated_injection(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=6)
    for k in range(20):
        w.unauth_message(
            t + timedelta(seconds=15 * k),
            "127.0.0.1",
            "security@paypa1.example",
            [(f"victim{k}@example.net", "block" if k % 5 == 0 else "sent")],
        )
    doc = run(tmp_path, w)
    assert kinds(doc) == ["unauthenticated_injection"]
    inc = doc["incidents"][0]
    assert inc["subject"]["ip"] == "127.0.0.1"
    assert inc["path"] == "unauthenticated_smtp"
    assert inc["messages"] == 20 and inc["recipients"] == 20 and inc["bounced"] == 4


def test_web_script(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=7)
    for k in range(25):
        w.pickup_message(
            t + timedelta(seconds=30 * k), 33, "contact.php", [(f"winner{k}@example.org", "sent")]
        )
    doc = run(tmp_path, w)
    assert kinds(doc) == ["web_script"]
    inc = doc["incidents"][0]
    assert inc["subject"] == {"uid": 33, "script": "contact.php"}
    assert inc["path"] == "local_submission"
    assert inc["messages"] == 25


def test_open_relay(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=8)
    for k in range(6):
        w.unauth_message(
            t + timedelta(seconds=15 * k),
            "198.51.100.99",
            "x@spam.example",
            [(f"target{k}@example.com", "sent")],
        )
    doc = run(tmp_path, w)
    assert kinds(doc) == ["open_relay"]
    assert doc["incidents"][0]["subject"]["ip"] == "198.51.100.99"


@pytest.mark.parametrize("noise", [0, 1])
def test_all_at_once_keeps_them_apart(tmp_path: Path, noise: int) -> None:
    w = LogWriter(T0)
    if noise:
        benign(w)
    t = T0 + timedelta(days=2)
    for k in range(30):
        w.smtp_auth_fail(t + timedelta(seconds=40 * k), "198.51.100.23", "carol@example.com")
    for k in range(25):
        w.pickup_message(t + timedelta(seconds=30 * k), 33, "contact.php", [(f"w{k}@example.org", "sent")])
    doc = run(tmp_path, w)
    assert sorted(kinds(doc)) == ["brute_force", "web_script"]


def test_brute_force_that_succeeds_is_critical(tmp_path: Path) -> None:
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=3)
    for k in range(15):
        w.smtp_auth_fail(t + timedelta(seconds=40 * k), "198.51.100.23", "carol@example.com")
    w.imap_login(t + timedelta(minutes=11), "198.51.100.23", "carol@example.com")
    doc = run(tmp_path, w)
    inc = next(i for i in doc["incidents"] if i["kind"] == "brute_force")
    assert inc["severity"] == "critical"
    assert any("logged in successfully as carol@example.com" in r for r in inc["reasons"])
    assert any("carol@example.com" in a and "change those passwords" in a for a in inc["recommended_actions"])


def test_addresses_typed_by_the_attacker_never_become_subjects(tmp_path: Path) -> None:
    """User names, HELO and senders that carry the office's address must not point at the office."""
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=3)
    decoys = [f"admin@[{OFFICE}]", f"{OFFICE}", f"x rip={OFFICE}, lip=1.2.3.4", f"u,{OFFICE}", f"[{OFFICE}]"]
    for k in range(30):
        user = decoys[k % len(decoys)]
        w.smtp_auth_fail(t + timedelta(seconds=30 * k), "198.51.100.23", user)
        w.imap_fail(t + timedelta(seconds=30 * k + 5), "198.51.100.23", user)
    doc = run(tmp_path, w)
    subjects = [i["subject"].get("ip") for i in doc["incidents"]]
    assert "198.51.100.23" in subjects
    assert OFFICE not in subjects
    for inc in doc["incidents"]:
        assert all(a.get("ip") != OFFICE for a in inc["addresses"]), inc


@pytest.mark.parametrize(("count", "fires"), [(30, True), (8, False), (0, False)])
def test_shared_hosting_site_user(tmp_path: Path, count: int, fires: bool) -> None:
    """PHP as the site's own user (Plesk, cPanel, PHP-FPM pools): watched, at a higher threshold."""
    w = LogWriter(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=7)
    for k in range(count):
        w.pickup_message(t + timedelta(seconds=30 * k), 10003, "", [(f"lucky{k}@example.org", "sent")])
    # root's cron mail to outside admins never counts
    for k in range(30):
        w.pickup_message(t + timedelta(seconds=31 * k), 0, "", [(f"admin{k}@example.net", "sent")])
    doc = run(tmp_path, w)
    assert kinds(doc) == (["web_script"] if fires else [])
    if fires:
        assert doc["incidents"][0]["subject"] == {"uid": 10003, "script": ""}
        assert doc["incidents"][0]["messages"] == 30
