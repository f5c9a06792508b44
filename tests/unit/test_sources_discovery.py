"""Which files are read, in which order, and how series are merged."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailwarden.model import ReadStats, Record, Source
from mailwarden.sources import (
    SourceError,
    default_log_paths,
    merge_by_time,
    read_records,
    rotation_of,
)
from mailwarden.sources.discovery import plan

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def line(day: int, text: str, program: str = "postfix/smtpd[1]") -> bytes:
    return f"Nov {day:2} 10:00:00 mx {program}: {text}\n".encode()


def read(paths: list[str], stats: ReadStats | None = None) -> list[Record]:
    return list(read_records(paths, stats or ReadStats(), tz=UTC, now=NOW))


@pytest.mark.parametrize(
    ("name", "base", "rank"),
    [
        ("mail.log", "mail.log", (2, 0)),
        ("mail.log.1", "mail.log", (1, -1)),
        ("mail.log.12.gz", "mail.log", (1, -12)),
        ("mail.log.gz", "mail.log", (2, 0)),
        ("maillog-20261101.gz", "maillog", (0, 2026110100)),
        ("maillog-2026110105.xz", "maillog", (0, 2026110105)),
        ("maillog.20261101", "maillog", (0, 2026110100)),
        ("mail.log-2026-11-01.bz2", "mail.log", (0, 2026110100)),
        ("dovecot.log", "dovecot.log", (2, 0)),
        ("mail-99999999", "mail-99999999", (2, 0)),  # not a date
        (".1", ".1", (2, 0)),
        ("mail.log.١", "mail.log.١", (2, 0)),  # non-ASCII digit
    ],
)
def test_rotation_of(name: str, base: str, rank: tuple[int, int]) -> None:
    assert (rotation_of(name).base, rotation_of(name).rank) == (base, rank)


def test_rotation_of_a_hostile_name_is_cheap() -> None:
    assert rotation_of("-" * 65536 + ".log").base.endswith(".log")


def test_rotated_series_given_in_any_order_is_read_oldest_first(tmp_path: Path) -> None:
    (tmp_path / "mail.log.3.gz").write_bytes(gzip.compress(line(20, "three")))
    (tmp_path / "mail.log.2.bz2").write_bytes(bz2.compress(line(21, "two")))
    (tmp_path / "mail.log.1").write_bytes(line(22, "one"))
    (tmp_path / "mail.log").write_bytes(line(23, "live"))
    names = ["mail.log", "mail.log.1", "mail.log.3.gz", "mail.log.2.bz2"]
    stats = ReadStats()
    records = read([str(tmp_path / name) for name in names], stats)
    assert [r.message for r in records] == ["three", "two", "one", "live"]
    assert [Path(f).name for f in stats.files] == [
        "mail.log.3.gz",
        "mail.log.2.bz2",
        "mail.log.1",
        "mail.log",
    ]


def test_rotation_order_wins_over_timestamps(tmp_path: Path) -> None:
    # Within one series the file order is kept even when a stamp goes backwards.
    (tmp_path / "maillog-20261120.xz").write_bytes(lzma.compress(line(25, "old file")))
    (tmp_path / "maillog").write_bytes(line(24, "live file"))
    records = read([str(tmp_path)])
    assert [r.message for r in records] == ["old file", "live file"]


def test_directory_patterns(tmp_path: Path) -> None:
    wanted = {
        "mail.log": line(1, "mail.log"),
        "mail.log.1.gz": gzip.compress(line(1, "mail.log.1")),
        "maillog-20261101": line(1, "maillog dated"),
        "mail-relay.log": line(1, "mail-relay"),
        "dovecot.log": b"Nov  1 10:00:00 auth: Info: dovecot\n",
        "dovecot-info.log.2": b"Nov  1 10:00:00 imap-login: Info: dovecot-info\n",
        "postfix.log": line(1, "postfix.log"),
        "mainlog": line(1, "exim"),
    }
    ignored = {
        "mail.info": line(1, "mail.info is a subset of mail.log"),
        "mail.warn": line(1, "subset"),
        "mail.err": line(1, "subset"),
        "mailman.log": line(1, "mailing list manager"),
        "syslog": line(1, "not a mail log"),
        "fake-remote.log": line(1, "not a mail log"),
        "notes.json": b'{"a": 1}\n',
    }
    for name, data in {**wanted, **ignored}.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "mail.log.d").mkdir()
    messages = {r.message for r in read([str(tmp_path)])}
    assert messages == {
        "mail.log",
        "mail.log.1",
        "maillog dated",
        "mail-relay",
        "Info: dovecot",
        "Info: dovecot-info",
        "postfix.log",
        "exim",
    }


def test_mail_info_is_read_when_there_is_no_full_mail_log(tmp_path: Path) -> None:
    (tmp_path / "mail.info").write_bytes(line(1, "info"))
    (tmp_path / "mail.info.1").write_bytes(line(1, "info old"))
    assert [r.message for r in read([str(tmp_path)])] == ["info old", "info"]


def test_journald_export_in_a_directory_is_found_by_content(tmp_path: Path) -> None:
    entry = {
        "__REALTIME_TIMESTAMP": "1795800854000000",
        "SYSLOG_IDENTIFIER": "postfix/qmgr",
        "MESSAGE": "from journal",
    }
    (tmp_path / "journal.json.gz").write_bytes(gzip.compress(json.dumps(entry).encode()))
    records = read([str(tmp_path)])
    assert [(r.program, r.source.file) for r in records] == [
        ("postfix/qmgr", f"journal:{tmp_path / 'journal.json.gz'}")
    ]


def test_directory_without_mail_logs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "syslog").write_bytes(line(1, "x"))
    with pytest.raises(SourceError, match="no mail log files"):
        read_records([str(tmp_path)], ReadStats())


def test_missing_path_raises_before_anything_is_read(tmp_path: Path) -> None:
    (tmp_path / "mail.log").write_bytes(line(1, "x"))
    stats = ReadStats()
    with pytest.raises(SourceError, match=r"nope\.log: No such file"):
        read_records([str(tmp_path / "mail.log"), str(tmp_path / "nope.log")], stats)
    assert stats.files == []


def test_unreadable_file_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: the suite may run as root, which reads files whatever their mode.
    path = tmp_path / "mail.log"
    path.write_bytes(line(1, "x"))
    real_open = open

    def deny(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(SourceError, match=r"mail\.log: Permission denied"):
        read_records([str(path)], ReadStats())


def test_named_zstd_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.1.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 10)
    with pytest.raises(SourceError, match="zstd"):
        read_records([str(path)], ReadStats())


def test_same_file_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "mail.log").write_bytes(line(1, "x"))
    (tmp_path / "link.log").symlink_to(tmp_path / "mail.log")
    stats = ReadStats()
    records = read([str(tmp_path / "mail.log"), str(tmp_path / "link.log"), str(tmp_path)], stats)
    assert len(records) == 1
    assert len(stats.problems) == 2


def test_distinct_series_are_merged_by_time(tmp_path: Path) -> None:
    (tmp_path / "mail.log").write_bytes(line(1, "a") + line(3, "c") + line(5, "e"))
    (tmp_path / "dovecot.log").write_bytes(
        b"Nov  2 10:00:00 auth: b\nNov  4 10:00:00 auth: d\nNov  5 10:00:00 auth: e2\n"
    )
    records = read([str(tmp_path / "mail.log"), str(tmp_path / "dovecot.log")])
    assert [r.message for r in records] == ["a", "b", "c", "d", "e", "e2"]


def test_merge_by_time_is_stable_and_lazy() -> None:
    start = datetime(2026, 11, 27, tzinfo=UTC)

    def rec(file: str, n: int, minutes: int) -> Record:
        return Record(start + timedelta(minutes=minutes), "", "p", None, f"{file}{n}", Source(file, n))

    first = [rec("a", 1, 0), rec("a", 2, 5), rec("a", 3, 5)]
    second = [rec("b", 1, 5), rec("b", 2, 1)]  # locally out of order: kept, only interleaved

    def endless() -> Iterator[Record]:
        minute = 10
        while True:
            yield rec("c", minute, minute)
            minute += 1

    merged = merge_by_time([first, second, endless()])
    got = [next(merged).message for _ in range(7)]
    assert got == ["a1", "a2", "a3", "b1", "b2", "c10", "c11"]


def test_empty_input_list_yields_nothing() -> None:
    assert read([]) == []


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_default_log_paths_debian_with_dovecot(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "var/log/mail.log": b"",
            "var/log/mail.log.1": b"",
            "var/log/mail.log.2.gz": b"",
            "var/log/mail.info": b"",  # subset of mail.log: left out
            "var/log/mail.warn": b"",
            "var/log/dovecot.log": b"",
            "var/log/dovecot.log-20261101.gz": b"",
            "var/log/syslog": b"",
        },
    )
    found = [os.path.relpath(p, tmp_path) for p in default_log_paths(root=str(tmp_path))]
    assert found == [
        "var/log/mail.log.2.gz",
        "var/log/mail.log.1",
        "var/log/mail.log",
        "var/log/dovecot.log-20261101.gz",
        "var/log/dovecot.log",
    ]


def test_default_log_paths_suse_and_plesk_link(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "var/log/maillog": b"",
            "var/log/maillog-20261120.xz": b"",
            "var/log/mail": b"",
            "var/log/mail.info": b"",
        },
    )
    psa = tmp_path / "usr/local/psa/var/log"
    psa.mkdir(parents=True)
    (psa / "maillog").symlink_to(tmp_path / "var/log/maillog")
    found = [os.path.relpath(p, tmp_path) for p in default_log_paths(root=str(tmp_path))]
    assert found == ["var/log/maillog-20261120.xz", "var/log/maillog", "var/log/mail"]


def test_default_log_paths_falls_back_to_mail_info(tmp_path: Path) -> None:
    make_tree(tmp_path, {"var/log/mail/mail.info": b"", "var/log/exim4/mainlog": b""})
    found = [os.path.relpath(p, tmp_path) for p in default_log_paths(root=str(tmp_path))]
    assert found == ["var/log/mail/mail.info", "var/log/exim4/mainlog"]


def test_default_log_paths_on_an_empty_system(tmp_path: Path) -> None:
    assert default_log_paths(root=str(tmp_path)) == []


def test_multilog_directory_is_one_series_oldest_first(tmp_path: Path) -> None:
    """qmail under daemontools: rotated ``@<tai64n>.s`` files, then ``current``."""
    old = "@4000000069283b5a1c2d3e4f.s"
    older = "@4000000069183b5a1c2d3e4f.s"
    for name in (old, older, "current"):
        (tmp_path / name).write_text(f"@4000000069283b5a1c2d3e4f {name}\n")
    (tmp_path / "lock").write_text("")
    (tmp_path / "state").write_text("")
    stats = ReadStats()
    assert plan([str(tmp_path)], stats) == [[str(tmp_path / n) for n in (older, old, "current")]]
    assert rotation_of(old).base == "current"


def test_a_current_file_that_is_not_multilog_is_not_a_mail_log(tmp_path: Path) -> None:
    (tmp_path / "current").write_text("not a log\n")
    (tmp_path / "mail.log").write_text("")
    assert plan([str(tmp_path)], ReadStats()) == [[str(tmp_path / "mail.log")]]


def test_multilog_subdirectories_are_found_two_levels_down(tmp_path: Path) -> None:
    """Naming /var/log/qmail reads qmail-send's current and smtpd/current; other dirs are left alone."""
    send = tmp_path / "qmail"
    smtpd = send / "smtpd"
    smtpd.mkdir(parents=True)
    (send / "current").write_text("@4000000069283b5a1c2d3e4f new msg 1\n")
    (smtpd / "@4000000069183b5a1c2d3e4f.s").write_text("@4000000069183b5a1c2d3e4f tcpserver: status: 1/40\n")
    (smtpd / "current").write_text("@4000000069283b5a1c2d3e4f tcpserver: status: 0/40\n")
    (tmp_path / "apache2").mkdir()
    (tmp_path / "apache2" / "current").write_text("not multilog\n")
    (tmp_path / "mail.log").write_text("")
    series = plan([str(tmp_path)], ReadStats())
    assert sorted(series) == sorted(
        [
            [str(tmp_path / "mail.log")],
            [str(send / "current")],
            [str(smtpd / "@4000000069183b5a1c2d3e4f.s"), str(smtpd / "current")],
        ]
    )
    assert plan([str(send)], ReadStats()) == [
        [str(send / "current")],
        [str(smtpd / "@4000000069183b5a1c2d3e4f.s"), str(smtpd / "current")],
    ]
