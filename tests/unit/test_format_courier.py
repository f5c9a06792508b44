"""Courier format: what the golden files cannot show.

Per-stream state and its bounds, reused message ids, both program-name
styles, the client surviving any typed user name, and no input raising or
taking long.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.formats import FormatSet
from mailwarden.formats import _courier_mta as mta
from mailwarden.formats.courier import CourierFormat, courier_ip
from mailwarden.model import (
    AuthFailed,
    DeliveryAttempted,
    Event,
    MessageQueued,
    MessageRemoved,
    Record,
    Source,
)

TS = datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC)
REAL = "203.0.113.5"
SMUGGLED = "192.0.2.66"


def _record(program: str, message: str) -> Record:
    return Record(TS, "mx", program, None, message, Source("test.log", 1))


def _parse(fmt: CourierFormat, program: str, message: str) -> list[Event]:
    events = fmt.parse(_record(program, message))
    assert events is not None, f"unparsed: {program}: {message}"
    return list(events)


@pytest.mark.parametrize(
    "program",
    ["imapd", "imapd-ssl", "pop3d", "pop3d-ssl", "imaplogin", "courierpop3login", "courieresmtpd",
     "courierd", "courierlocal", "courieresmtp", "authdaemond", "authdaemond.mysql"],
)  # fmt: skip
def test_claims_courier_programs(program: str) -> None:
    sets = FormatSet()
    fmt = sets.format_for(program)
    assert fmt is not None and fmt.name == "courier"
    assert sets.route_for(program) is not None


@pytest.mark.parametrize("program", ["imap", "pop3", "imap-login", "courier", "imapd2", "postfix/smtpd"])
def test_does_not_claim_others(program: str) -> None:
    assert not CourierFormat().claims(program)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::FFFF:192.0.2.7", "192.0.2.7"),
        ("192.0.2.7", "192.0.2.7"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::1", "::1"),
        ("::ffff:999.0.2.7", None),
        ("x" * 70, None),
        ("", None),
    ],
)
def test_courier_ip(text: str, want: str | None) -> None:
    assert courier_ip(text) == want


@settings(max_examples=300, deadline=None)
@given(user=st.text(max_size=120))
def test_typed_user_never_becomes_client(user: str) -> None:
    fmt = CourierFormat()
    line = f"LOGIN FAILED, user={user}, ip=[::ffff:{REAL}], port=[40000]"
    (event,) = _parse(fmt, "imapd", line)
    assert isinstance(event, AuthFailed)
    assert event.client == REAL
    assert event.user == user


@settings(max_examples=300, deadline=None)
@given(user=st.text(max_size=80))
def test_typed_auth_user_never_becomes_client(user: str) -> None:
    fmt = CourierFormat()
    line = f'error,relay=::ffff:{REAL},port=4000,msg="535 Authentication failed.",cmd: AUTH LOGIN {user}'
    (event,) = _parse(fmt, "courieresmtpd", line)
    assert isinstance(event, AuthFailed)
    assert event.client == REAL


def _lifecycle(fmt: CourierFormat, msg_id: str, outcome: str) -> list[Event]:
    out: list[Event] = []
    out += _parse(
        fmt,
        "courierd",
        f"started,id={msg_id},from=<a@example.com>,module=esmtp,host=example.net,addr=<r@example.net>",
    )
    out += _parse(fmt, "courieresmtp", f"id={msg_id},from=<a@example.com>,addr=<r@example.net>: {outcome}")
    status = {"2": "success", "4": "deferred", "5": "failure"}[outcome[0]]
    out += _parse(
        fmt, "courieresmtp", f"id={msg_id},from=<a@example.com>,addr=<r@example.net>,status: {status}"
    )
    out += _parse(fmt, "courierd", f"completed,id={msg_id}")
    return out  # fmt: skip


def test_reused_id_starts_a_new_lifecycle() -> None:
    fmt = CourierFormat()
    first = _lifecycle(fmt, "0000AAAA.00000001.00000001", "250 ok")
    second = _lifecycle(fmt, "0000AAAA.00000001.00000001", "550 5.1.1 no such user")
    for events in (first, second):
        kinds = [type(e) for e in events]
        assert kinds == [MessageQueued, DeliveryAttempted, MessageRemoved]
    assert isinstance(second[1], DeliveryAttempted)
    assert second[1].status == "bounced" and second[1].reply == "550 5.1.1 no such user"


def test_deferred_message_is_not_removed() -> None:
    fmt = CourierFormat()
    events = _lifecycle(fmt, "0000BBBB.00000001.00000001", "421 4.7.0 try later")
    assert [type(e) for e in events] == [MessageQueued, DeliveryAttempted]
    assert fmt.mta._live == {"0000BBBB.00000001.00000001": False}


def test_reply_state_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mta, "_MAX_REPLIES", 10)
    monkeypatch.setattr(mta, "_MAX_RCPTS", 3)
    fmt = CourierFormat()
    for n in range(25):
        _parse(fmt, "courieresmtp", f"id=ID{n},from=<a>,addr=<r{n}@example.net>: 250 ok")
    assert len(fmt.mta._replies) == 10
    for n in range(5):
        _parse(fmt, "courieresmtp", f"id=SAME,from=<a>,addr=<r{n}@example.net>: 250 ok")
    assert len(fmt.mta._replies["SAME"]) == 3
    assert fmt.dropped == 16 + 2


def test_live_state_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mta, "_MAX_LIVE", 5)
    fmt = CourierFormat()
    for n in range(12):
        _parse(fmt, "courierd", f"started,id=ID{n},from=<a>,module=local,host=h,addr=<r>")
    assert len(fmt.mta._live) == 5
    assert fmt.dropped == 7


def test_reply_text_is_capped() -> None:
    fmt = CourierFormat()
    for n in range(200):
        _parse(fmt, "courieresmtp", f"id=X,from=<a>,addr=<r>: 550-{n:03d} line of a long reply")
    (event,) = _parse(fmt, "courieresmtp", "id=X,from=<a>,addr=<r>,status: failure")
    assert isinstance(event, DeliveryAttempted)
    assert len(event.reply) <= mta._MAX_REPLY_TEXT


_PROGRAMS = ["imapd", "pop3d-ssl", "courierpop3login", "courieresmtpd", "courierd", "courierlocal",
             "courieresmtp", "authdaemond"]  # fmt: skip
_PIECES = ["LOGIN, ", "LOGIN FAILED, ", "user=", "method=", "ip=[", "::ffff:", "203.0.113.5", "]", ", ",
           "port=[", "error,relay=", "msg=\"", "\",cmd: ", "AUTH ", "from=<", ">,addr=<", ">: ", ",status: ",
           "success", ",success: ", "started,id=", "newmsg,id=", ", auth=", ": dns; ", " (", " [", "])",
           "completed,id=", "INFO: ", "12345.678 ", "\x00", "\udcff", "\n"]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(
    program=st.sampled_from(_PROGRAMS),
    parts=st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=14),
)
def test_hostile_lines_never_raise(program: str, parts: list[str]) -> None:
    fmt = CourierFormat()
    fmt.parse(_record(program, "".join(parts)))


def test_long_hostile_lines_are_fast() -> None:
    fmt = CourierFormat()
    bulk = "]: , ip=[>,addr=<,status: " * 2600  # ~64 KiB
    start = time.perf_counter()
    for program in _PROGRAMS:
        for head in ("LOGIN FAILED, user=", "error,relay=1,", "id=A,from=<", "newmsg,id=A: dns; ", ""):
            fmt.parse(_record(program, head + bulk))
    assert time.perf_counter() - start < 0.5
