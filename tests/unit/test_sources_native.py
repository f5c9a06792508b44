"""Framing of the files MTAs write themselves: multilog (TAI64N), Exim's logs, PHP's mail.log."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailwarden.model import ReadStats, Source
from mailwarden.sources import read_records
from mailwarden.sources.native import EXIM, MULTILOG, PHP_MAIL, SYSLOG, framer_for, kind_of, tai64n
from mailwarden.sources.years import YearInference

SRC = Source("t", 1)


def _label(ts: datetime) -> str:
    seconds = int(ts.timestamp()) + (1 << 62) + 10
    return f"@{seconds:016x}{ts.microsecond * 1000:08x}"


def test_tai64n_round_trip() -> None:
    ts = datetime(2026, 11, 27, 17, 34, 14, 123456, tzinfo=UTC)
    assert tai64n(_label(ts)) == ts


@pytest.mark.parametrize(
    "label",
    ["@4000000069283b5a1c2d3e4", "@4000000069283b5a1c2d3e4g", "4000000069283b5a1c2d3e4ff", "@40000000692?3b5a1c2d3e4f",
     "@4000000069283b5aFFFFFFFF", "@ffffffffffffffff00000000"],
)  # fmt: skip
def test_tai64n_rejects_what_is_not_a_label(label: str) -> None:
    assert tai64n(label) is None


@pytest.mark.parametrize(
    ("first", "name", "kind"),
    [
        (b"@4000000069283b5a1c2d3e4f new msg 123", "current", MULTILOG),
        (b"2026-11-27 17:34:14 1vOabc-000123-AB <= a@example.com H=[192.0.2.1]", "mainlog", EXIM),
        (b"2026-11-27 17:34:14 [1234] Start queue run: pid=1234", "whatever.log", EXIM),
        (b"2026-11-27 17:34:14 imap-login: Info: Login: user=<a>", "dovecot.log", SYSLOG),
        (b"[27-Nov-2026 17:34:14 UTC] mail() on [/var/www/a.php:3]: To: x", "mail.log", PHP_MAIL),
        (b"mail() on [/var/www/a.php:3]: To: x -- Headers: ", "php_mail.log", PHP_MAIL),
        (b"Nov 27 17:34:14 mx postfix/smtpd[1]: connect from x[192.0.2.1]", "mail.log", SYSLOG),
    ],
)
def test_kind_of(first: bytes, name: str, kind: str) -> None:
    assert kind_of(first, name) == kind


def test_exim_framer_stamps_pid_and_zone() -> None:
    clock = YearInference(datetime(2026, 12, 1, tzinfo=UTC), UTC)
    frame = framer_for(EXIM, "/var/log/exim4/mainlog", None)
    rec = frame("2026-11-27 17:34:14.123 +0100 [4242] 1vOabc-000123-AB Completed", SRC, clock)
    assert rec is not None
    assert rec.ts == datetime(2026, 11, 27, 16, 34, 14, 123000, tzinfo=UTC)
    assert (rec.program, rec.pid, rec.message) == ("exim", 4242, "1vOabc-000123-AB Completed")
    plain = frame("2026-11-27 17:34:14 Start queue run: pid=9", SRC, clock)
    assert plain is not None and plain.ts == datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC)
    assert plain.pid is None and plain.message == "Start queue run: pid=9"
    assert frame("2026-11-27 garbage", SRC, clock) is None
    assert frame("  P Received: from x", SRC, clock) is None  # rejectlog header continuation
    reject = framer_for(EXIM, "/var/log/exim4/rejectlog.1", None)
    got = reject("2026-11-27 17:34:14 H=[192.0.2.1] rejected RCPT", SRC, clock)
    assert got is not None and got.program == "exim/reject"


def test_php_framer_zones_and_undated_lines() -> None:
    clock = YearInference(datetime(2026, 12, 1, tzinfo=UTC), UTC)
    mtime = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    frame = framer_for(PHP_MAIL, "mail.log", mtime)
    rec = frame("[27-Nov-2026 17:34:14 Europe/Berlin] mail() on [/var/www/a.php:3]: To: x", SRC, clock)
    assert rec is not None and rec.ts == datetime(2026, 11, 27, 16, 34, 14, tzinfo=UTC)
    assert rec.program == "php-mail" and rec.message.startswith("mail() on [")
    utc = frame("[27-Nov-2026 17:34:14 UTC] mail() on [/a.php:1]: To: x", SRC, clock)
    assert utc is not None and utc.ts.hour == 17
    assert frame("[27-Nov-2026 17:34:14 Mars/Olympus] mail() on", SRC, clock) is None
    assert frame("[31-Feb-2026 17:34:14 UTC] mail() on", SRC, clock) is None
    undated = frame("mail() on [/var/www/a.php:3]: To: x -- Headers: ", SRC, clock)
    assert undated is not None and undated.ts == mtime


def test_reader_picks_the_framer_per_file(tmp_path: Path) -> None:
    start = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    qmail = tmp_path / "current"
    qmail.write_text(f"{_label(start)} new msg 42\n{_label(start + timedelta(seconds=1))} end msg 42\n")
    exim = tmp_path / "mainlog"
    exim.write_text("2026-11-27 12:00:00 +0000 1vOabc-000123-AB Completed\n")
    stats = ReadStats()
    records = list(read_records([str(qmail), str(exim)], stats))
    assert [(r.program, r.message) for r in records] == [
        ("qmail", "new msg 42"),
        ("exim", "1vOabc-000123-AB Completed"),
        ("qmail", "end msg 42"),
    ]
    assert stats.file_kinds == {MULTILOG: 1, EXIM: 1}
    assert not stats.skipped


@pytest.mark.integration
def test_real_multilog_stamps(tmp_path: Path) -> None:
    """Lines stamped by daemontools' own ``multilog`` frame at the time they were written."""
    multilog = shutil.which("multilog")
    if multilog is None:
        pytest.skip("daemontools is not installed (scripts/install-test-deps.sh installs it)")
    logdir = tmp_path / "log"
    before = datetime.now(UTC)
    subprocess.run(
        [multilog, "t", str(logdir)], input=b"new msg 4711\nend msg 4711\n", check=True, timeout=30
    )
    after = datetime.now(UTC)
    current = logdir / "current"
    assert current.read_bytes().startswith(b"@4000")
    stats = ReadStats()
    records = list(read_records([str(current)], stats))
    assert [r.message for r in records] == ["new msg 4711", "end msg 4711"]
    assert all(before - timedelta(seconds=1) <= r.ts <= after + timedelta(seconds=1) for r in records)
    assert stats.file_kinds == {MULTILOG: 1}
    assert os.path.getsize(current) > 0


def test_hostile_lines_never_raise() -> None:
    clock = YearInference(datetime(2026, 12, 1, tzinfo=UTC), UTC)
    frames = [framer_for(k, "mainlog", None) for k in (EXIM, MULTILOG, PHP_MAIL)]
    hostile = ["", "@", "[", "2026-11-27 17:34:14.", "2026-11-27 17:34:14 [", "[99-Zzz-9999 99:99:99 x] y",
               "@4000000069283b5a1c2d3e4f", "2026-11-27 17:34:14 +99 x", "[1-Nov-2026 1:2:3 +25:00] m",
               "2026-13-45 25:61:61 x", "\x00" * 40, "[" * 200, "2026-11-27 17:34:14.1234567890 x"]  # fmt: skip
    for frame in frames:
        for line in hostile:
            frame(line, SRC, clock)
