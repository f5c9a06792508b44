"""tools/play_incident.py plays its scenarios on a real stack and the logs tell the story."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from mailstack import require_mailstack

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import play_incident

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_CLIENT = re.compile(r"smtpd\[\d+\]: \w+: client=unknown\[([^\]]+)\], sasl_method=\w+, sasl_username=(\S+)$")
_SASL_FAIL = re.compile(r"warning: unknown\[([^\]]+)\]: SASL \w+ authentication failed")
_DOVECOT_FAIL = re.compile(r"auth: Info: passwd-file\(([^,]+),([^,)]+)[,)].*(mismatch|unknown user)")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_sample_incident(tmp_path: Path) -> None:
    require_mailstack()
    truth = play_incident.run("sample", tmp_path, seed=1)
    mail, dove = _lines(tmp_path / "mail.log"), _lines(tmp_path / "dovecot.log")

    # who sent what from where (SASL-authenticated messages), straight from the log
    sent = Counter((m[2], m[1]) for ln in mail if (m := _CLIENT.search(ln)))
    bob_ips = {ip for (user, ip) in sent if user == "bob@lab.test"}
    assert bob_ips == {"192.0.2.10", *(b[0] for b in play_incident.BOB_SPAM)}
    bob_spam = sum(n for (user, ip), n in sent.items() if user == "bob@lab.test" and ip != "192.0.2.10")
    assert 150 <= bob_spam <= 300
    assert bob_spam == sum(
        c.get("messages", 0) for ip, c in truth["actors"]["bob"]["by_ip"].items() if ip != "192.0.2.10"
    )
    assert sent[("news@lab.test", "192.0.2.30")] == 60
    assert {ip for (user, ip) in sent if user == "dave@lab.test"} == {"192.0.2.20", "192.0.2.140"}

    # attackers never get in; their failures are in both logs with the claimed address
    assert not any(ip.startswith("198.51.100.") for (_, ip) in sent)
    smtp_fails = Counter(m[1] for ln in mail if (m := _SASL_FAIL.search(ln)))
    dovecot_fails = Counter(m[2] for ln in dove if (m := _DOVECOT_FAIL.search(ln)))
    brute = truth["actors"]["brute-ru"]["counts"]
    assert smtp_fails["198.51.100.23"] == brute["smtp_auth_failed"] == 17
    assert dovecot_fails["198.51.100.23"] == 25
    spray_users = {m[1] for ln in dove if (m := _DOVECOT_FAIL.search(ln)) and m[2] == "198.51.100.150"}
    assert len(spray_users) == 12
    assert dovecot_fails["192.0.2.12"] == 3  # erin's typos

    # remote answers: blocklist bounces, nouser bounces, rate-limit deferrals
    counts = truth["log_counts"]
    assert counts["bounced_554_blocklist"] > 20
    assert counts["bounced_550_nouser"] > 20
    assert counts["deferred_421_rate"] > 20
    news_bounces = [ln for ln in mail if "status=bounced" in ln and "nouser-" in ln]
    assert any("nouser-old.subscriber@example.net" in ln for ln in news_bounces)


def test_injection_scenario(tmp_path: Path) -> None:
    require_mailstack()
    truth = play_incident.run("injection", tmp_path, seed=1)
    mail = (tmp_path / "mail.log").read_text()
    assert mail.count(" uid=33 from=<www-data>") == 40
    assert "info: header X-PHP-Originating-Script: 33:contact.php from local" in mail
    assert mail.count("client=unknown[127.0.0.1]\n") == 25
    assert "improper command pipelining after" in mail
    assert mail.count("Relay access denied") == 5
    assert truth["actors"]["www-data"]["counts"]["messages"] == 40
