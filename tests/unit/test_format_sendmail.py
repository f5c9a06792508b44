"""SendmailFormat and SaslauthdFormat beyond the golden samples: state bounds, id reuse,
the web-script hand-off, hostile and random input (never raise, never a non-address client)."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.formats import sendmail as sm
from mailwarden.formats.saslauthd import SaslauthdFormat
from mailwarden.formats.sendmail import SendmailFormat
from mailwarden.model import Event, Record, Source

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOSTILE_LEN = 64 * 1024


def rec(message: str, program: str = "sm-mta", pid: int | None = 100) -> Record:
    return Record(T, "mx", program, pid, message, Source("maillog", 1))


def types(events: object) -> list[str]:
    assert isinstance(events, list | tuple)
    return [e.type for e in events]


def check_clients(events: object) -> None:
    for e in events or ():  # type: ignore[attr-defined]
        client = getattr(e, "client", None)
        if client is not None:
            assert str(ipaddress.ip_address(client)) == client


def test_route_and_claims() -> None:
    fmt = SendmailFormat()
    for program in ("sm-mta", "sendmail", "sm-msp-queue"):
        assert fmt.claims(program) and fmt.route(program) is not None
    assert not fmt.claims("postfix/smtpd") and fmt.route("postfix/smtpd") is None


def test_auth_state_is_per_pid_and_needs_matching_client() -> None:
    fmt = SendmailFormat()
    fmt.parse(rec("AUTH=server, relay=[192.0.2.1], authid=bob, mech=PLAIN, bits=0", pid=7))
    other = fmt.parse(
        rec("4ARA0000000001: from=<a@example.com>, size=1, class=0, nrcpts=1, proto=ESMTPA, "
            "daemon=MTA, relay=[192.0.2.2]", pid=7)
    )  # fmt: skip
    assert other is not None and other[0].sasl_username == ""  # type: ignore[attr-defined]
    same = fmt.parse(
        rec("4ARA0000000002: from=<a@example.com>, size=1, class=0, nrcpts=1, proto=ESMTPA, "
            "daemon=MTA, relay=[192.0.2.1]", pid=7)
    )  # fmt: skip
    assert same is not None and same[0].sasl_username == "bob"  # type: ignore[attr-defined]


def test_auth_state_is_bounded(monkeypatch: object) -> None:
    fmt = SendmailFormat()
    for pid in range(sm._MAX_AUTH + 10):
        fmt.parse(rec("AUTH=server, relay=[192.0.2.1], authid=u, mech=PLAIN, bits=0", pid=pid))
    assert len(fmt._auth) == sm._MAX_AUTH
    assert fmt.dropped == 10


def test_message_state_is_bounded() -> None:
    fmt = SendmailFormat()
    for n in range(sm._MAX_STATE + 5):
        fmt.parse(rec(f"4AR{n:011d}: from=<a@example.com>, size=1, class=0, nrcpts=1, relay=[192.0.2.1]"))
    assert len(fmt._msgs) == sm._MAX_STATE
    assert fmt.dropped == 5


def test_reused_queue_id_starts_a_new_lifecycle() -> None:
    fmt = SendmailFormat()
    line = "4ARB0000000001: from=<a@example.com>, size=1, class=0, nrcpts=2, relay=[192.0.2.1]"
    assert types(fmt.parse(rec(line))) == ["message_received", "message_queued"]
    assert types(fmt.parse(rec(line))) == ["message_removed", "message_received", "message_queued"]


def test_removed_only_when_every_recipient_is_done() -> None:
    fmt = SendmailFormat()
    fmt.parse(rec("4ARC0000000001: from=<a@example.com>, size=1, class=0, nrcpts=2, relay=[192.0.2.1]"))
    to = "4ARC0000000001: to=<{r}>, delay=00:00:01, mailer=esmtp, pri=1, relay=mx. [203.0.113.1], dsn={d}, stat={s}"
    assert types(fmt.parse(rec(to.format(r="x@example.net", d="4.0.0", s="Deferred: 421 busy")))) == [
        "delivery"
    ]
    assert types(fmt.parse(rec(to.format(r="y@example.net", d="2.0.0", s="Sent (ok)")))) == ["delivery"]
    assert types(fmt.parse(rec(to.format(r="x@example.net", d="2.0.0", s="Sent (ok)")))) == [
        "delivery",
        "message_removed",
    ]


def test_loopback_message_is_released_on_its_first_delivery() -> None:
    fmt = SendmailFormat()
    got = fmt.parse(rec("4ARD0000000001: from=<r@example.com>, size=1, class=0, nrcpts=1, proto=SMTP, "
                        "daemon=MTA, relay=localhost [127.0.0.1]"))  # fmt: skip
    assert types(got) == ["message_queued"]
    got = fmt.parse(rec("4ARD0000000001: to=<x@example.net>, delay=00:00:01, mailer=esmtp, pri=1, "
                        "relay=mx. [203.0.113.1], dsn=2.0.0, stat=Sent (ok)"))  # fmt: skip
    assert types(got) == ["message_received", "delivery", "message_removed"]
    assert not fmt._held


def test_saslauthd_routes() -> None:
    fmt = SaslauthdFormat()
    assert fmt.claims("saslauthd") and not fmt.claims("sm-mta")
    assert fmt.parse(rec("hello", program="saslauthd")) is None


HOSTILE = [
    "4ARE0000000001: to=" + "<a>," * 20000 + ", delay=00:00:00",
    "4ARE0000000001: to=<a>" + ", delay=00:00:00, mailer=x, pri=1" * 2000,
    "4ARE0000000001: from=" + ", size=1" * 8000,
    "ruleset=check_rcpt, arg1=" + ", relay=[1.2.3.4]" * 4000 + ", reject=550 x",
    "ruleset=check_rcpt, arg1=" + ", relay=a [1.2.3.4], reject=" * 3000,
    "AUTH=server, relay=" + "[" * HOSTILE_LEN,
    "AUTH failure (" + "(" * HOSTILE_LEN,
    "4ARE0000000001: " + "4ARE0000000001: " * 4000,
    "lost input channel from " + "a " * 30000,
    "[1.2.3.4]" + " " * HOSTILE_LEN,
]


def test_hostile_lines_are_fast_and_never_raise() -> None:
    for line in HOSTILE:
        for fmt, program in ((SendmailFormat(), "sm-mta"), (SaslauthdFormat(), "saslauthd")):
            start = time.perf_counter()
            check_clients(fmt.parse(rec(line[:HOSTILE_LEN], program=program)))
            assert time.perf_counter() - start < 0.25, line[:60]


_PIECES = st.sampled_from([
    "4ARF0000000001: ", "from=", "to=", "<a@example.com>", ", size=1", ", class=0", ", nrcpts=1",
    ", proto=ESMTPA", ", daemon=MTA", ", relay=", "[192.0.2.1]", "[IPv6:::ffff:192.0.2.1]", "[x]",
    "localhost", "www-data@localhost", ", ctladdr=www-data (33/33)", ", delay=00:00:01",
    ", mailer=relay", ", pri=1", ", dsn=5.1.1", ", reply=550 x", ", stat=", "Sent (", ")",
    "Deferred: ", "4ARF0000000002 Message accepted for delivery", ": DSN: ", "AUTH=server, relay=",
    ", authid=", ", mech=", "AUTH failure (", "): ", ", user=", "ruleset=check_rcpt, arg1=",
    ", reject=", "550 5.7.1 ", "... ", "User unknown", "did not issue MAIL/EXPN/VRFY/ETRN",
    " (may be forged)", "do_auth         : ", "auth failure: [user=", "] [service=", "] [realm=",
    "] [mech=", "] [reason=", "]", " ", ",", "\x00", "é",
])  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECES, max_size=14), st.integers(min_value=0, max_value=3))
def test_random_lines_never_raise(parts: list[str], pid: int) -> None:
    line = "".join(parts)
    sendmail, sasl = SendmailFormat(), SaslauthdFormat()
    events: list[Event] = []
    for program in ("sm-mta", "sendmail"):
        got = sendmail.parse(rec(line, program=program, pid=pid))
        events.extend(got or ())
    events.extend(sasl.parse(rec(line, program="saslauthd")) or ())
    check_clients(events)
