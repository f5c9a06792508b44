"""PHP's mail.log names the script: joined to the MTA's finding by time, or a finding of its own."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from mailwarden.pipeline import triage
from mailwarden.report.json_report import to_dict
from tests.scenarios.logwriter import LogWriter
from tests.scenarios.plays import T0, benign

GEO = str(Path(__file__).parents[1] / "data" / "lab-geo.mmdb")
MTIME = datetime(2026, 11, 28, 12, 0, 0).timestamp()
SCRIPT = "/var/www/site/wp-content/plugins/form/contact.php"


def php_line(t: datetime, script: str, line: int, to: str) -> str:
    """PHP 7+ mail.log shape (tests/golden/php_mail/mail.log); ``t`` is local wall time."""
    aware = t.astimezone()
    offset = aware.strftime("%z")
    return (
        f"[{aware.strftime('%d-%b-%Y %H:%M:%S')} {offset[:3]}:{offset[3:]}] mail() on [{script}:{line}]: "
        f"To: {to} -- Headers: From: wordpress@example.com -- Subject: You won"
    )


def run(tmp_path: Path, w: LogWriter | None, php: list[str]) -> dict:
    paths = []
    if w is not None:
        paths += w.write(tmp_path, MTIME)
    if php:
        log = tmp_path / "php_mail.log"
        log.write_text("".join(line + "\n" for line in php), encoding="utf-8")
        os.utime(log, (MTIME, MTIME))
        paths.append(log)
    doc = to_dict(triage([str(p) for p in paths], geoip_paths=[GEO]))
    assert doc["stats"]["unparsed"] == {} and doc["stats"]["unclaimed"] == {}
    return doc


class _NoHeaderCheck(LogWriter):
    """Postfix without the X-PHP-Originating-Script INFO rule: pickup names only the uid."""

    def pickup_message(self, t: datetime, uid: int, script: str, rcpts: list[tuple[str, str]]) -> str:
        return super().pickup_message(t, uid, "", rcpts)


def test_php_mail_log_names_the_script_of_the_mta_finding(tmp_path: Path) -> None:
    w = _NoHeaderCheck(T0)
    benign(w)
    t = T0 + timedelta(days=2, hours=7)
    php = []
    for k in range(25):
        w.pickup_message(t + timedelta(seconds=30 * k), 33, "", [(f"winner{k}@example.org", "sent")])
        php.append(php_line(t + timedelta(seconds=30 * k), SCRIPT, 88, f"winner{k}@example.org"))
    # another site's form that wrote once, a day earlier, must not take the credit
    php.insert(0, php_line(t - timedelta(days=1), "/var/www/other/form.php", 5, "owner@example.com"))
    doc = run(tmp_path, w, php)
    assert [i["kind"] for i in doc["incidents"]] == ["web_script"]
    inc = doc["incidents"][0]
    assert inc["subject"] == {"uid": 33, "script": SCRIPT}
    assert inc["messages"] == 25
    assert any(e["file"].endswith("php_mail.log") for e in inc["evidence"])


def test_php_mail_log_alone_makes_a_finding_on_fan_out(tmp_path: Path) -> None:
    t = T0 + timedelta(hours=3)
    php = [php_line(t + timedelta(seconds=20 * k), SCRIPT, 88, f"victim{k}@example.net") for k in range(40)]
    doc = run(tmp_path, None, php)
    assert [i["kind"] for i in doc["incidents"]] == ["web_script"]
    inc = doc["incidents"][0]
    assert inc["subject"] == {"uid": None, "script": SCRIPT}
    assert inc["path"] == "local_submission"
    assert inc["messages"] == 40


def test_a_contact_form_writing_to_its_owner_is_not_a_finding(tmp_path: Path) -> None:
    t = T0 + timedelta(hours=3)
    php = [php_line(t + timedelta(seconds=20 * k), SCRIPT, 88, "owner@example.com") for k in range(200)]
    php += [php_line(t + timedelta(seconds=7 * k), "/var/www/shop/order.php", 3, f"c{k}@example.org, shop@example.com")
            for k in range(8)]  # fmt: skip
    doc = run(tmp_path, None, php)
    assert doc["incidents"] == []
