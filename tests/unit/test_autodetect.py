"""Auto-detection: a directory or unknown files of several MTAs, and what the run says about them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tests.scenarios import plays
from tests.scenarios.writers import WRITERS

from mailwarden.cli.main import main

MTIME = datetime(2026, 11, 28, 12, 0, 0).timestamp()


def _write(mta: str, directory: Path) -> list[Path]:
    w = WRITERS[mta](plays.T0)
    t = plays.T0 + timedelta(hours=2)
    w.imap_login(t, plays.OFFICE, "alice@example.com")
    w.smtp_auth_message(
        t + timedelta(minutes=1), plays.OFFICE, "alice@example.com", [("a@example.org", "sent")]
    )
    w.smtp_auth_fail(t + timedelta(minutes=2), "198.51.100.23", "carol@example.com")
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = w.write(directory, MTIME)
    return paths


@pytest.mark.parametrize("mta", sorted(set(WRITERS) - {"postfix"}))
def test_events_names_the_formats_it_recognised(
    tmp_path: Path, mta: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(mta, tmp_path / mta)
    assert main(["events", *map(str, paths)]) == 0
    err = capsys.readouterr().err
    assert "Formats: " in err and "none recognised" not in err
    assert "(0 not understood)" in err and "not understood)" in err


def test_triage_json_counts_per_format_and_file_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [p for mta in ("exim", "sendmail", "plesk_qmail") for p in _write(mta, tmp_path / mta)]
    main(["triage", *map(str, paths), "--format", "json", "--no-progress"])
    stats = json.loads(capsys.readouterr().out)["stats"]
    formats = stats["formats"]
    assert {"exim", "sendmail", "qmail", "dovecot"} <= set(formats), formats
    assert all(v["unparsed"] == 0 and v["records"] > 0 for v in formats.values()), formats
    assert stats["file_kinds"].get("exim") == 1
    assert stats["file_kinds"].get("syslog", 0) >= 2


def test_an_unknown_file_says_none_recognised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "whatever.log"
    log.write_text("Nov 27 10:00:00 host cron[1]: (root) CMD (true)\nnot a log line at all\n")
    assert main(["events", str(log)]) == 0
    err = capsys.readouterr().err
    assert "Formats: none recognised; 1 lines of other programs (cron)" in err
