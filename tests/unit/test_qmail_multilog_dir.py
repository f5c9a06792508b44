"""A daemontools qmail box triaged by its log directories, not by file names.

The scenario writer (tests/scenarios/writers/qmail_multilog.py) lays out
``qmail/current`` (qmail-send), ``qmail/smtpd/current`` (tcpserver and
qmail-smtpd), ``maillog`` (Dovecot) and ``php/mail.log``. Discovery must find
the multilog ``current`` files (and multilog's rotated ``@….s`` files) from
the directory names alone and give the incident the named files give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.scenarios import plays
from tests.scenarios.expect import compromised_incident
from tests.scenarios.writers.qmail_multilog import QmailMultilogWriter

from mailwarden.model import ReadStats
from mailwarden.pipeline import triage
from mailwarden.report.json_report import to_dict
from mailwarden.sources.discovery import plan

GEO = str(Path(__file__).parents[1] / "data" / "lab-geo.mmdb")
MTIME = plays.T0.timestamp() + 5 * 86400


def _written(tmp_path: Path) -> list[Path]:
    w = QmailMultilogWriter(plays.T0)
    plays.benign(w)
    plays.compromised(w)
    return w.write(tmp_path, MTIME)


def _triage(paths: list[Path]) -> dict[str, Any]:
    doc: dict[str, Any] = to_dict(triage([str(p) for p in paths], geoip_paths=[GEO]))
    stats = doc["stats"]
    assert stats["unparsed"] == {}, stats["unparsed"]
    assert stats["unclaimed"] == {}, stats["unclaimed"]
    assert stats["skipped"] == {}, stats["skipped"]
    return doc


def test_the_qmail_log_directories_alone(tmp_path: Path) -> None:
    send, smtpd, _maillog, _php = _written(tmp_path)
    doc = _triage([tmp_path / "qmail", tmp_path / "qmail" / "smtpd"])
    assert doc["sources"]["files"] == [str(send), str(smtpd)]
    assert doc["stats"]["file_kinds"] == {"multilog": 2}
    compromised_incident(doc)


def test_directories_give_what_the_named_files_give(tmp_path: Path) -> None:
    paths = _written(tmp_path)
    by_name = compromised_incident(_triage(paths))
    by_directory = _triage([tmp_path / "qmail", tmp_path / "qmail" / "smtpd", tmp_path, tmp_path / "php"])
    assert sorted(by_directory["sources"]["files"]) == sorted(str(p) for p in paths)
    assert compromised_incident(by_directory) == by_name


def test_multilog_rotated_files_are_read_before_current(tmp_path: Path) -> None:
    """multilog renames a full ``current`` to ``@<TAI64N of the rotation>.s``; the series is read in order."""
    send, smtpd, _maillog, _php = _written(tmp_path)
    reference = compromised_incident(_triage([tmp_path / "qmail", tmp_path / "qmail" / "smtpd"]))
    expected: set[str] = set()
    series: list[list[str]] = []
    for current in (send, smtpd):
        lines = current.read_text(encoding="utf-8").splitlines(keepends=True)
        half = len(lines) // 2
        rotated = current.parent / f"{lines[half - 1][:25]}.s"
        rotated.write_text("".join(lines[:half]), encoding="utf-8")
        current.write_text("".join(lines[half:]), encoding="utf-8")
        expected |= {str(rotated), str(current)}
        series.append([str(rotated), str(current)])
    assert plan([str(tmp_path / "qmail"), str(tmp_path / "qmail" / "smtpd")], ReadStats()) == series
    doc = _triage([tmp_path / "qmail", tmp_path / "qmail" / "smtpd"])
    assert set(doc["sources"]["files"]) == expected
    inc = compromised_incident(doc)
    strip = ("evidence", "timeline")
    assert {k: v for k, v in inc.items() if k not in strip} == {
        k: v for k, v in reference.items() if k not in strip
    }
    assert [e["what"] for e in inc["timeline"]] == [e["what"] for e in reference["timeline"]]
