"""OpenSmtpdFormat beyond the golden samples: bounded session state, random input."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.formats import opensmtpd
from mailwarden.formats.opensmtpd import OpenSmtpdFormat
from mailwarden.model import Record, Source

T = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)


def rec(message: str) -> Record:
    return Record(T, "mx", "smtpd", 1, message, Source("maillog", 1))


def test_sessions_are_bounded_and_forgotten_on_disconnect() -> None:
    fmt = OpenSmtpdFormat()
    for n in range(opensmtpd._MAX_SESSIONS + 3):
        fmt.parse(rec(f"{n:016x} smtp connected address=192.0.2.1 host=x"))
    assert len(fmt._sessions) == opensmtpd._MAX_SESSIONS
    assert fmt.dropped == 3
    fmt.parse(rec(f"{5:016x} smtp disconnected reason=quit"))
    assert f"{5:016x}" not in fmt._sessions


def test_session_user_reaches_the_message() -> None:
    fmt = OpenSmtpdFormat()
    fmt.parse(rec("00000000000000aa smtp connected address=192.0.2.7 host=x"))
    fmt.parse(rec("00000000000000aa smtp authentication user=bob result=ok"))
    got = fmt.parse(rec("00000000000000aa smtp message msgid=0badc0de size=10 nrcpt=1 proto=ESMTP"))
    assert got is not None and got[0].sasl_username == "bob"  # type: ignore[attr-defined]


_PIECES = st.sampled_from([
    "00000000000000aa ", "smtp ", "mta ", "mda ", "event=", "connected ", "authentication ",
    "message ", "envelope ", "delivery ", "disconnected ", "failed-command ", "address=",
    "192.0.2.1", "[2001:db8::1]", "[::ffff:192.0.2.1]", "local", " host=x", "user=", " result=",
    "ok", "permfail", "msgid=0badc0de", " size=1", " nrcpt=1", " ndest=1", "evpid=0badc0de00000001",
    " from=<a@x>", " to=<b@y>", " rcpt=<->", ' source="1"', ' relay="1.2.3.4 (x)"', " delay=1s",
    ' result="Ok"', ' stat="250"', 'command="RCPT TO:<a>"', ' result="550 x"', " ", '"', "<", ">",
])  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECES, max_size=16))
def test_random_lines_never_raise(parts: list[str]) -> None:
    fmt = OpenSmtpdFormat()
    for line in ("".join(parts), "00000000000000aa smtp " + "".join(parts)):
        for e in fmt.parse(rec(line)) or ():
            client = getattr(e, "client", None)
            if client is not None:
                assert str(ipaddress.ip_address(client)) == client


def test_hostile_long_lines_do_not_raise() -> None:
    fmt = OpenSmtpdFormat()
    for line in (
        '00000000000000aa mta delivery evpid=0badc0de00000001 from=<a> to=<b> relay="' + "x" * 65536,
        "00000000000000aa smtp failed-command command=" + '"' * 65536,
        "00000000000000aa smtp connected address=" + "[" * 65536,
    ):
        fmt.parse(rec(line))
