"""frame_line: every accepted line shape, the refusals, and hostile input."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwarden.model import Record, Source
from mailwarden.sources import YearInference, frame_line

SRC = Source("mail.log", 7)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def frame(line: str) -> Record | None:
    return frame_line(line, SRC, YearInference(NOW, UTC))


def parts(line: str) -> tuple[str, str, int | None, str]:
    record = frame(line)
    assert record is not None, line
    return record.host, record.program, record.pid, record.message


def test_rfc3164_line_from_the_lab() -> None:
    line = "Nov 27 17:34:14 mx postfix/smtpd[7086]: connect from unknown[127.0.0.1]"
    record = frame(line)
    assert record == Record(
        ts=datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC),
        host="mx",
        program="postfix/smtpd",
        pid=7086,
        message="connect from unknown[127.0.0.1]",
        source=SRC,
    )


def test_space_padded_day_and_nested_program() -> None:
    record = frame("Nov  3 01:02:03 mx postfix/submission/smtpd[12]: hello")
    assert record is not None
    assert record.ts == datetime(2026, 11, 3, 1, 2, 3, tzinfo=UTC)
    assert (record.program, record.pid) == ("postfix/submission/smtpd", 12)


def test_message_keeps_colons_and_brackets() -> None:
    line = "Nov 27 17:34:15 mx postfix/smtpd[7086]: warning: unknown[1.2.3.4]: SASL LOGIN failed: x"
    assert parts(line)[3] == "warning: unknown[1.2.3.4]: SASL LOGIN failed: x"


def test_tag_without_pid_and_with_a_non_numeric_pid() -> None:
    assert parts("Nov 27 17:34:14 mx dovecot: imap-login: Login: user=<a>")[:3] == (
        "mx",
        "dovecot",
        None,
    )
    # "٣" is a digit to str.isdigit() and int(); a pid is ASCII only
    assert parts("Nov 27 17:34:14 mx postfix/smtpd[٣]: x")[1:3] == ("postfix/smtpd", None)
    assert parts("Nov 27 17:34:14 mx postfix/smtpd[99999999999999999999]: x")[2] is None


def test_syslog_forwarded_dovecot_keeps_the_process_in_the_message() -> None:
    assert parts("Nov 27 17:34:14 mx dovecot[123]: auth: Info: passwd-file(bob,1.2.3.4): x") == (
        "mx",
        "dovecot",
        123,
        "auth: Info: passwd-file(bob,1.2.3.4): x",
    )


@pytest.mark.parametrize(
    ("line", "program", "message"),
    [
        ("Nov 27 17:34:14 imap-login: Info: Login: user=<alice@lab.test>", "imap-login",
         "Info: Login: user=<alice@lab.test>"),
        ("Nov 27 17:34:14 auth: Info: passwd-file(bob@lab.test,127.0.0.1): Password mismatch",
         "auth", "Info: passwd-file(bob@lab.test,127.0.0.1): Password mismatch"),
        ("Nov 27 17:34:24 imap(alice@lab.test)<7362><XwikeEVhgqR/AAAB>: Info: Disconnected: x",
         "imap(alice@lab.test)<7362><XwikeEVhgqR/AAAB>", "Info: Disconnected: x"),
        ("Nov 27 17:34:24 imap(al ice)<7362><Xw>: Info: Disconnected", "imap(al ice)<7362><Xw>",
         "Info: Disconnected"),
        ("Nov 27 17:34:14 master: Info: Dovecot v2.3.19.1 starting up", "master",
         "Info: Dovecot v2.3.19.1 starting up"),
    ],
)  # fmt: skip
def test_dovecot_log_path_lines_have_no_host(line: str, program: str, message: str) -> None:
    assert parts(line) == ("", program, None, message)


def test_hostless_syslog_line_still_splits_the_pid() -> None:
    assert parts("Nov 27 17:34:14 postfix/smtpd[5]: x") == ("", "postfix/smtpd", 5, "x")


def test_empty_message_is_a_record() -> None:
    assert parts("Nov 27 17:34:14 mx postfix/smtpd[5]:") == ("mx", "postfix/smtpd", 5, "")
    assert parts("Nov 27 17:34:14 auth:") == ("", "auth", None, "")


def test_iso_stamps_keep_their_offset_and_become_utc() -> None:
    record = frame("2026-11-27T17:34:14.123456+01:00 mx postfix/smtpd[7086]: connect from x")
    assert record is not None
    assert record.ts == datetime(2026, 11, 27, 16, 34, 14, 123456, tzinfo=UTC)
    assert record.ts.utcoffset() == timedelta(0)
    assert (record.host, record.program, record.pid) == ("mx", "postfix/smtpd", 7086)


def test_iso_stamp_without_offset_is_local_time_in_tz() -> None:
    plus_two = timezone(timedelta(hours=2))
    record = frame_line("2026-11-27 17:34:14 imap-login: Info: Login: x", SRC, YearInference(NOW, plus_two))
    assert record is not None
    assert record.ts == datetime(2026, 11, 27, 15, 34, 14, tzinfo=UTC)
    assert (record.host, record.program) == ("", "imap-login")


def test_rfc5424_with_priority() -> None:
    record = frame("<34>1 2026-11-27T17:34:14.003Z mx postfix 7086 - - connect from x")
    assert record is not None
    assert record.ts == datetime(2026, 11, 27, 17, 34, 14, 3000, tzinfo=UTC)
    assert (record.host, record.program, record.pid, record.message) == (
        "mx",
        "postfix",
        7086,
        "connect from x",
    )


def test_rfc5424_structured_data_bom_and_nil_values() -> None:
    sd = '[exampleSDID@32473 iut="3" eventSource="App]lication"][x@1 a="q\\"]"]'
    record = frame(f"<165>1 2026-11-27T17:34:14+01:00 - postfix/smtpd - ID47 {sd} \ufeffhello")
    assert record is not None
    assert (record.host, record.program, record.pid, record.message) == (
        "",
        "postfix/smtpd",
        None,
        "hello",
    )
    no_msg = frame("<165>1 2026-11-27T17:34:14Z mx app 1 - -")
    assert no_msg is not None
    assert no_msg.message == ""


def test_rfc3164_with_priority_prefix() -> None:
    assert parts("<22>Nov 27 17:34:14 mx postfix/smtpd[1]: hi") == ("mx", "postfix/smtpd", 1, "hi")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Nov 27 17:34:14",
        "Nov 27 17:34:14 ",
        "Nov 27 17:34:14 mx",  # cut off before the tag
        "Nov 27 17:34:14 mx postfix/smtpd[1] no colon",
        "Nov 27 17:34:14 mx : empty tag",
        "Nov 27 17:34:14 mx [123]: no program",
        "Foo 27 17:34:14 mx postfix/smtpd[1]: bad month",
        "Feb 30 17:34:14 mx postfix/smtpd[1]: no such day",
        "Nov 27 25:34:14 mx postfix/smtpd[1]: no such hour",
        "Nov 27 17:61:14 mx postfix/smtpd[1]: no such minute",
        "Nov ٢7 17:34:14 mx postfix/smtpd[1]: non-ASCII digit",
        "2026-13-27T17:34:14Z mx postfix/smtpd[1]: bad month",
        "2026-11-27T17:34:14Z",
        "0001-01-01T00:00:00+01:00 mx p[1]: before year 1 in UTC",
        "<34>1 - mx postfix 1 - - no timestamp",
        "<34>1 2026-11-27T17:34:14Z mx - 1 - - no app",
        "<34>1 2026-11-27T17:34:14Z mx app 1 - [unterminated sd",
        "<34>1 2026-11-27T17:34:14Z mx",
        "<1><2>Nov 27 17:34:14 mx p[1]: two priorities",
        "<x>Nov 27 17:34:14 mx p[1]: bad priority",
        "random text that is not a log line",
    ],
)
def test_refused_lines(line: str) -> None:
    assert frame(line) is None


def test_tag_cache_does_not_leak_between_host_and_hostless_lines() -> None:
    # "Info:" becomes a cached tag here ...
    assert parts("Nov 27 17:34:14 mx Info: x")[1] == "Info"
    # ... and must not turn the host-less "auth:" line into host "auth:".
    assert parts("Nov 27 17:34:14 auth: Info: y") == ("", "auth", None, "Info: y")


HOSTILE = 64 * 1024


@pytest.mark.parametrize(
    "line",
    [
        "Nov 27 17:34:14 " + " " * HOSTILE,
        "Nov 27 17:34:14 " + "a" * HOSTILE,
        "Nov 27 17:34:14 mx " + "(" * HOSTILE,
        "Nov 27 17:34:14 mx postfix/smtpd" + "[" * HOSTILE + ": x",
        "Nov 27 17:34:14 mx p" + "]" * HOSTILE + ": x",
        "Nov 27 17:34:14 " + ": " * (HOSTILE // 2),
        "2026-11-27T" + "1" * HOSTILE,
        "2026-11-27 17:34:14 " + "x:" * (HOSTILE // 2),
        "<34>1 2026-11-27T17:34:14Z mx app 1 - " + "[" * HOSTILE,
        "<34>1 2026-11-27T17:34:14Z mx app 1 - [a " + '"' * HOSTILE,
        "<34>1 2026-11-27T17:34:14Z mx app 1 - [a " + "\\" * HOSTILE + "]",
        "<34>1 2026-11-27T17:34:14Z mx app 1 - " + "[a]" * (HOSTILE // 3),
        "<34>" + "<34>" * (HOSTILE // 4),
    ],
)
def test_hostile_64k_lines_are_framed_in_linear_time(line: str) -> None:
    clock = YearInference(NOW, UTC)
    started = time.perf_counter()
    for _ in range(10):
        frame_line(line, SRC, clock)
    # Linear work on 64 KiB is well under a millisecond; quadratic would take seconds.
    assert time.perf_counter() - started < 0.5


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(line: str) -> None:
    record = frame_line(line, SRC, YearInference(NOW, UTC))
    assert record is None or (record.ts.tzinfo is not None and record.program)


@given(
    st.sampled_from(["Nov 27 17:34:14 ", "2026-11-27T17:34:14Z ", "<34>1 2026-11-27T17:34:14Z "]),
    st.text(max_size=200),
)
def test_arbitrary_text_after_a_valid_stamp_never_raises(stamp: str, rest: str) -> None:
    record = frame_line(stamp + rest, SRC, YearInference(NOW, UTC))
    assert record is None or record.ts.year == 2026
