"""read_records on single inputs: compression, stdin, journald, bad lines, broken archives."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import sys
import tracemalloc
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.model import ReadStats, Record
from mailwarden.sources import read_records

NOW = datetime(2026, 11, 28, tzinfo=UTC)
LAB = Path("/work/shared/samples/lab")
LINES = [
    "Nov 27 17:34:14 mx postfix/smtpd[7086]: connect from unknown[127.0.0.1]",
    "Nov 27 17:34:15 mx postfix/qmgr[7008]: 94B6920C940: removed",
    "Nov 27 17:34:16 auth: Info: passwd-file(bob@lab.test,127.0.0.1): Password mismatch",
]
TEXT = ("\n".join(LINES) + "\n").encode()

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
}


def read(*paths: str | Path, stats: ReadStats | None = None) -> list[Record]:
    return list(read_records([str(p) for p in paths], stats or ReadStats(), tz=UTC, now=NOW))


# Counted once per file, not per line: a broken archive's cut line is not a line read.
FILE_LEVEL_REASONS = {"truncated_archive", "unsupported_compression", "read_error"}


def accounted(stats: ReadStats) -> bool:
    """Every physical line became a record or one skip reason."""
    return stats.lines_read == stats.records + sum(stats.skipped.values())


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_each_compression_is_read(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"mail.log{suffix}"
    path.write_bytes(COMPRESSORS[suffix](TEXT))
    stats = ReadStats()
    records = read(path, stats=stats)
    assert [r.message for r in records] == [
        "connect from unknown[127.0.0.1]",
        "94B6920C940: removed",
        "Info: passwd-file(bob@lab.test,127.0.0.1): Password mismatch",
    ]
    assert [r.source.line for r in records] == [1, 2, 3]
    assert {r.source.file for r in records} == {str(path)}
    assert (stats.lines_read, stats.records, stats.files) == (3, 3, [str(path)])


def test_compression_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.1"  # gzip without .gz, as after a careless rename
    path.write_bytes(gzip.compress(TEXT))
    assert len(read(path)) == 3


def test_multi_member_gzip(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.gz"
    path.write_bytes(gzip.compress(TEXT) + gzip.compress(TEXT))
    assert [r.source.line for r in read(path)] == [1, 2, 3, 4, 5, 6]


def test_lab_samples_frame_completely() -> None:
    stats = ReadStats()
    records = read(LAB / "postfix.log", LAB / "dovecot.log", stats=stats)
    assert stats.skipped == {}
    assert stats.records == len(records) == stats.lines_read
    assert all(r.ts.tzinfo is not None for r in records)


def test_last_line_without_newline_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(TEXT.replace(b"\n", b"\r\n").rstrip(b"\r\n"))
    records = read(path)
    assert [r.message for r in records][-1].endswith("Password mismatch")
    assert not any(r.message.endswith("\r") for r in records)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"Nov 27 17:34:14 mx postfix/smtpd[1]: caf\xe9", "invalid_utf8"),
        (b"\x00\x01\x02\x03garbage\x00", "binary"),
        (bytes(range(1, 9)) * 20, "binary"),
        (b"Nov 27 17:34:14 mx postfix/smtpd[1]: a\x00b", "binary"),
        (b"\xff\xfe\x01\x02\x03\x04\x05\x06", "binary"),
        (b"Nov 27 17:3", "unframed"),
        (b"   ", "blank"),
        (b"", "blank"),
    ],
)
def test_bad_lines_are_counted_and_the_next_line_is_read(tmp_path: Path, bad: bytes, reason: str) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(bad + b"\n" + TEXT)
    stats = ReadStats()
    records = read(path, stats=stats)
    assert stats.skipped == {reason: 1}
    assert [r.source.line for r in records] == [2, 3, 4]
    assert accounted(stats)


def test_line_after_a_crash_nul_block_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"\x00" * 4096 + TEXT)
    stats = ReadStats()
    assert [r.source.line for r in read(path, stats=stats)] == [1, 2, 3]
    assert stats.skipped == {}


def test_two_megabyte_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    with path.open("wb") as handle:
        handle.write(TEXT)
        handle.write(b"Nov 27 17:34:14 mx postfix/smtpd[1]: " + b"A" * (2 * 1024 * 1024) + b"\n")
        handle.write(TEXT)
    stats = ReadStats()
    tracemalloc.start()
    try:
        records = read(path, stats=stats)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.skipped == {"too_long": 1}
    assert [r.source.line for r in records] == [1, 2, 3, 5, 6, 7]
    assert peak < 1024 * 1024  # chunk + limit, never the 2 MiB line
    assert accounted(stats)


def test_long_line_at_end_of_file_and_exactly_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    limit_line = b"Nov 27 17:34:14 mx p[1]: " + b"x" * (64 * 1024 - 25)
    assert len(limit_line) == 64 * 1024
    path.write_bytes(limit_line + b"\n" + TEXT + b"y" * 300_000)
    stats = ReadStats()
    records = read(path, stats=stats)
    assert [r.source.line for r in records] == [1, 2, 3, 4]
    assert stats.skipped == {"too_long": 1}


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_truncated_archive_keeps_earlier_lines(tmp_path: Path, suffix: str) -> None:
    # bzip2 works in 900 kB blocks: make several, so that cutting keeps whole ones
    big = b"".join(
        b"Nov 27 17:34:14 mx postfix/smtpd[%d]: connect from unknown[10.%d.%d.1]\n" % (i, i % 251, i % 241)
        for i in range(50_000)
    )
    data = COMPRESSORS[suffix](big)
    path = tmp_path / f"mail.log.1{suffix}"
    path.write_bytes(data[: len(data) * 2 // 3])
    stats = ReadStats()
    records = read(path, stats=stats)
    assert 0 < len(records) < 50_000
    assert [r.source.line for r in records] == list(range(1, len(records) + 1))
    assert stats.skipped["truncated_archive"] == 1
    assert len(stats.problems) == 1 and str(path) in stats.problems[0]
    assert stats.files == [str(path)]


def test_corrupt_gzip_body_is_reported(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(TEXT * 100))
    data[20:40] = b"\xff" * 20
    path = tmp_path / "mail.log.gz"
    path.write_bytes(bytes(data))
    stats = ReadStats()
    read(path, stats=stats)
    assert stats.skipped["truncated_archive"] == 1


def test_zstd_in_a_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "mail.log").write_bytes(TEXT)
    (tmp_path / "mail.log.1.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
    stats = ReadStats()
    assert len(read(tmp_path, stats=stats)) == 3
    assert stats.skipped == {"unsupported_compression": 1}


@pytest.mark.parametrize("compress", [False, True])
def test_stdin(monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    data = gzip.compress(TEXT) if compress else TEXT
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    stats = ReadStats()
    records = read("-", stats=stats)
    assert [(r.source.file, r.source.line) for r in records] == [("-", 1), ("-", 2), ("-", 3)]
    assert stats.files == ["-"]
    assert records[0].ts == datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC)


def test_missing_stdin_is_a_problem_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    stats = ReadStats()
    assert read("-", stats=stats) == []
    assert stats.skipped == {"unreadable_file": 1}
    assert stats.problems and stats.problems[0].startswith("-: cannot open")


def journal_entry(**fields: object) -> str:
    entry: dict[str, object] = {
        "__REALTIME_TIMESTAMP": "1795800854000123",
        "_HOSTNAME": "mx",
        "SYSLOG_IDENTIFIER": "postfix/smtpd",
        "SYSLOG_PID": "7086",
        "_PID": "1",
        "MESSAGE": "connect from unknown[127.0.0.1]",
    }
    entry.update(fields)
    return json.dumps({k: v for k, v in entry.items() if v is not None})


def test_journald_json_export(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    lines = [
        journal_entry(),
        journal_entry(MESSAGE=[99, 97, 102, 233]),  # not UTF-8: journald writes bytes
        journal_entry(SYSLOG_PID=None, SYSLOG_IDENTIFIER="dovecot", MESSAGE="imap-login: x"),
        journal_entry(__REALTIME_TIMESTAMP="soon"),
        journal_entry(MESSAGE=None),
        '{"__REALTIME_TIMESTAMP": "1", "MESSAGE": "no program"}',
        "[" * 60_000,  # nested past the recursion limit
        "not json",
        journal_entry(__REALTIME_TIMESTAMP="9" * 18),
    ]
    path.write_text("\n".join(lines) + "\n")
    stats = ReadStats()
    records = read(path, stats=stats)
    first, second = records
    assert first == Record(
        ts=datetime(2026, 11, 27, 17, 34, 14, 123, tzinfo=UTC),
        host="mx",
        program="postfix/smtpd",
        pid=7086,
        message="connect from unknown[127.0.0.1]",
        source=first.source,
    )
    assert (first.source.file, first.source.line) == (f"journal:{path}", 1)
    assert (second.program, second.pid, second.message) == ("dovecot", 1, "imap-login: x")
    assert stats.skipped == {"invalid_utf8": 1, "unframed": 6}
    assert accounted(stats)


def test_journald_export_on_stdin_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    data = ("\n" + journal_entry() + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(xz := lzma.compress(data))))
    assert xz.startswith(b"\xfd7zXZ")
    records = read("-")
    assert [(r.source.file, r.source.line) for r in records] == [("journal:-", 2)]


def test_mtime_is_the_year_reference_without_now(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"Dec 31 23:59:59 mx p[1]: a\nJan  1 00:00:01 mx p[1]: b\n")
    mtime = datetime(2031, 1, 1, 1, tzinfo=UTC).timestamp()
    os.utime(path, (mtime, mtime))
    records = list(read_records([str(path)], ReadStats(), tz=UTC))
    assert [r.ts.year for r in records] == [2030, 2031]


def test_stopping_early_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.gz"
    path.write_bytes(gzip.compress(TEXT * 10))
    opened: list[io.BufferedReader] = []
    real_open = open

    def spy(*args: object, **kwargs: object) -> io.BufferedReader:
        handle: io.BufferedReader = real_open(*args, **kwargs)  # type: ignore[call-overload]
        opened.append(handle)
        return handle

    with mock.patch("builtins.open", spy):
        stream = read_records([str(path)], ReadStats(), tz=UTC, now=NOW)
        assert isinstance(stream, Generator)
        next(stream)
        assert opened and not opened[-1].closed
        stream.close()
    assert all(handle.closed for handle in opened)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20), st.sampled_from(["", ".gz", ".xz"]))
def test_arbitrary_bytes_never_crash(chunks: list[bytes], suffix: str) -> None:
    data = COMPRESSORS[suffix](b"\n".join(chunks))
    if suffix and chunks:
        data = data[: len(data) - len(chunks[0]) % 7]  # sometimes truncated
    with mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(data))):
        stats = ReadStats()
        records = list(read_records(["-"], stats, tz=UTC, now=NOW))
    assert all(r.ts.tzinfo is not None for r in records)
    assert stats.records == len(records)
    if not FILE_LEVEL_REASONS & set(stats.skipped):
        assert accounted(stats)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([*LINES, "\x00", "\ufffd", "{", "Dec 31 23:59:59 mx p: x"]),
                max_size=30),
       st.binary(max_size=50))  # fmt: skip
def test_mixed_valid_and_junk_lines_are_all_accounted(lines: list[str], junk: bytes) -> None:
    data = "\n".join(lines).encode() + b"\n" + junk
    with mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(data))):
        stats = ReadStats()
        records = list(read_records(["-"], stats, tz=UTC, now=NOW))
    assert accounted(stats)
    assert [r.source.line for r in records] == sorted(r.source.line for r in records)
