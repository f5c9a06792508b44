"""Postfix-only scenarios: what the per-MTA plays (test_mta_scenarios.py) do not cover.

The benign corpus and the compromised account, brute force, spraying,
distributed attack, injection and web script plays run for every MTA,
Postfix included, in test_mta_scenarios.py. Scenarios are timelines spread over hours and days (see logwriter.py), run
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
from tests.scenarios.logwriter import LogWriter
from tests.scenarios.plays import OFFICE, T0, benign, web_script

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


def test_web_script(tmp_path: Path) -> None:
    """Postfix names the uid and, with the header_checks INFO rule, the script itself."""
    w = LogWriter(T0)
    benign(w)
    web_script(w)
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
