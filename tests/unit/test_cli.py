"""The command line: exit statuses, JSON shapes and terminal safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mailwarden.cli.main import main
from mailwarden.cli.timespec import parse_time
from mailwarden.report.safe import clean

MTIME = 1795800000  # 2026-11-27

SPAM_LINES = "".join(
    f"Nov 27 10:{m:02d}:00 mx postfix/pickup[100]: 1A2B3C4D5{m:02X}: uid=33 from=<www-data>\n"
    f"Nov 27 10:{m:02d}:00 mx postfix/cleanup[101]: 1A2B3C4D5{m:02X}: info: header X-PHP-Originating-Script: "
    f"33:contact.php from local; from=<www-data@example.com>\n"
    f"Nov 27 10:{m:02d}:00 mx postfix/qmgr[102]: 1A2B3C4D5{m:02X}: from=<www-data@example.com>, size=300, nrcpt=1 (queue active)\n"
    f"Nov 27 10:{m:02d}:01 mx postfix/smtp[103]: 1A2B3C4D5{m:02X}: to=<w{m}@example.org>, relay=mx.example.org[192.0.2.25]:25, "
    f"delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n"
    f"Nov 27 10:{m:02d}:01 mx postfix/qmgr[102]: 1A2B3C4D5{m:02X}: removed\n"
    for m in range(10)
)


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Syslog times carry no zone; pin the machine's zone so the tests do not depend on it."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def _write(tmp_path: Path, text: str, name: str = "mail.log") -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    os.utime(p, (MTIME, MTIME))
    return str(p)


def test_exit_1_and_json_when_incident(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, SPAM_LINES)
    assert main(["triage", path, "--format", "json", "--no-progress"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [i["kind"] for i in doc["incidents"]] == ["web_script"]
    assert doc["incidents"][0]["subject"] == {"uid": 33, "script": "contact.php"}
    assert doc["stats"]["messages"]["received"] == 10
    assert doc["stats"]["messages"]["delivered"] == 10
    for key in ("incidents", "accounts", "sources", "stats"):
        assert key in doc


def test_exit_0_when_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "Nov 27 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n")
    assert main(["triage", path, "--no-progress"]) == 0
    assert "no abuse found" in capsys.readouterr().out


def test_exit_2_on_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", str(tmp_path / "nope.log")]) == 2
    assert "error" in capsys.readouterr().err


def test_exit_2_on_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["triage", "--format", "xml"])
    assert exc.value.code == 2


def test_exit_2_on_bad_time(tmp_path: Path) -> None:
    assert main(["triage", _write(tmp_path, ""), "--since", "yesterday-ish"]) == 2


def test_since_until_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, SPAM_LINES)
    assert (
        main(
            [
                "triage",
                path,
                "--format",
                "json",
                "--since",
                "2026-11-27T10:05:00+00:00",
                "--until",
                "2026-11-27T10:07:00+00:00",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["stats"]["skipped"]["before_since"] == 25
    assert doc["stats"]["skipped"]["after_until"] == 15


def test_events_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, SPAM_LINES)
    assert main(["events", path]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 50
    first = rows[0]
    assert first["type"] == "local_submission"
    assert first["uid"] == 33
    assert first["client"] is None
    assert first["source"] == {"file": path, "line": 1}
    assert rows[3]["type"] == "delivery" and rows[3]["status"] == "sent"


def test_terminal_report_neutralises_escapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "\x1b]0;owned\x07\x1b[2J"
    lines = "".join(
        f"Nov 27 10:00:{k:02d} mx postfix/smtpd[1]: warning: unknown[198.51.100.7]: SASL LOGIN authentication "
        f"failed: (reason unavailable), sasl_username=user{k}{evil}@example.com\n"
        for k in range(12)
    )
    path = _write(tmp_path, lines)
    assert main(["triage", path, "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b" in out


def test_clean_escapes_bidi_and_caps_length() -> None:
    assert clean("a\u202eb") == "a\\u202eb"
    assert len(clean("x" * 1000, 50)) == 50


def test_parse_time() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_time("24h", now) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_time("2026-11-27T10:00:00+01:00") == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        parse_time("soon")


def test_timezone_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, SPAM_LINES)
    assert main(["events", path, "--timezone", "Europe/Berlin"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["ts"].startswith("2026-11-27T09:00:00")  # 10:00 CET is 09:00 UTC
    assert main(["events", path, "--timezone", "Mars/Base"]) == 2


def test_events_lists_unparsed_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "Nov 27 10:00:00 mx postfix/smtpd[1]: something entirely new \x9b\x1b[2J happened\n"
        "Nov 27 10:00:01 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n"
    )
    path = _write(tmp_path, text)
    assert main(["events", path, "--unparsed"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out  # JSON output is ASCII-escaped
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["type"] for r in rows] == ["connect", "unparsed"]
    assert rows[1]["source"] == {"file": path, "line": 1}
    assert rows[1]["message"].startswith("something entirely new")
