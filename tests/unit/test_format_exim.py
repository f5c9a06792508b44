"""Exim parser behaviour the golden files cannot show: routing, state, ids, hostile input."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from mailwarden.correlate.messages import MessageTracker
from mailwarden.formats import FormatSet
from mailwarden.formats._exim_fields import is_message_id, parse_host
from mailwarden.formats.exim import EximFormat
from mailwarden.model import Record, Source

TS = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
SAMPLES = [
    "1tAbcD-0001Xy-Ab <= alice@example.com H=host.example.net (pc) [192.0.2.10]:51329 P=esmtpsa "
    'A=dovecot_login:alice@example.com S=1200 id=x@example.com T="Hi \\" there" for b@example.org',
    "1tAbcD-0001Xy-Ab => b@example.org R=dnslookup T=remote_smtp H=mx.example.org [198.51.100.25] "
    'C="250 2.0.0 OK"',
    "1tAbcD-0001Xy-Ab ** c@example.org R=dnslookup T=remote_smtp H=mx.example.org [198.51.100.25] : "
    "SMTP error from remote mail server after RCPT TO:<c@example.org>: 550 5.7.1 blocked using zen",
    "1tAbcD-0001Xy-Ab == d@example.org R=dnslookup T=remote_smtp defer (-44) H=mx.example.org "
    "[198.51.100.25]: SMTP error from remote mail server after RCPT TO:<d@example.org>: 421 4.7.0 later",
    "1tAbcE-0001Xy-Ac <= <> R=1tAbcD-0001Xy-Ab U=Debian-exim P=local S=2400 for alice@example.com",
    "1tAbcD-0001Xy-Ab Completed",
    "dovecot_login authenticator failed for (User) [203.0.113.1]:21298 I=[192.0.2.1]:465 Ci=3: "
    "535 Incorrect authentication data (set_id=bob@example.com)",
    "H=(x) [203.0.113.5]:3755 I=[192.0.2.1]:25 F=<a@example.net> rejected RCPT <b@example.org>: relay not permitted",
    'SMTP protocol error in "AUTH LOGIN" H=(x) [203.0.113.6] AUTH command used when not advertised',
    "SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection "
    'from H=[203.0.113.9]:25936 I=[192.0.2.1]:25 input="GET /"',
    "no MAIL in SMTP connection from (User) [203.0.113.7]:4000 I=[192.0.2.1]:25 D=0.3s C=EHLO,AUTH,QUIT",
    'SMTP call from [203.0.113.8] dropped: too many nonmail commands (last was "RSET")',
    "SMTP connection from [203.0.113.7]:4000 (TCP/IP connection count = 1)",
]


def _record(message: str, program: str = "exim", host: str = "", pid: int | None = None) -> Record:
    return Record(TS, host, program, pid, message, Source("mainlog", 1))


def test_claims_and_routes() -> None:
    fmt = EximFormat()
    for program in ("exim", "exim4", "exim/reject", "exim/panic"):
        assert fmt.claims(program)
        assert fmt.route(program) is not None
    assert not fmt.claims("eximstats")
    assert FormatSet().format_for("exim4") is not None


def test_message_ids_old_and_new() -> None:
    assert is_message_id("1rAbcD-0001Xy-Ab <= x") == 16
    assert is_message_id("1rAbcD-000000001Xy-AbCd <= x") == 23
    assert is_message_id("1rAbcD-0001Xy-A! <= x") == 0
    assert is_message_id("2026-11-10 09:00:00") == 0
    assert is_message_id("") == 0


def test_helo_with_an_address_never_gives_the_client() -> None:
    text = "H=(x [198.51.100.9]) [203.0.113.5]:25 P=esmtp"
    host = parse_host(text, 2)
    assert host is not None
    assert host[2] == "203.0.113.5"
    assert parse_host("H=(x [198.51.100.9]) and no address", 2) is None


def test_ipv4_mapped_addresses_become_ipv4() -> None:
    events = EximFormat().parse(
        _record("1tAbcD-0001Xy-Ab <= a@example.net H=(h) [::ffff:203.0.113.62] P=esmtp S=9")
    )
    assert events is not None
    assert events[0].to_dict()["client"] == "203.0.113.62"


def test_syslog_duplicates_are_counted_once_but_mainlog_repeats_are_not_dropped() -> None:
    line = "H=(x) [203.0.113.5] F=<a@example.net> rejected RCPT <b@example.org>: relay not permitted"
    syslog = EximFormat()
    first = syslog.parse(_record(f"2026-11-10 09:00:00 [42] {line}", "exim4", "mx", 42))
    second = syslog.parse(_record(f"2026-11-10 09:00:00 [42] {line}", "exim4", "mx", 42))
    other_pid = syslog.parse(_record(f"2026-11-10 09:00:00 [43] {line}", "exim4", "mx", 43))
    assert first and len(first) == 1
    assert second == ()
    assert other_pid and len(other_pid) == 1
    native = EximFormat()
    assert native.parse(_record(line))
    assert native.parse(_record(line))  # Exim's own file never duplicates: both count


def test_syslog_split_parts() -> None:
    fmt = EximFormat()
    head = fmt.parse(
        _record("[1\\2] H=(x) [203.0.113.5] F=<a@example.net> rejected after DATA: spam", "exim", "mx")
    )
    tail = fmt.parse(_record("[2/2] Envelope-from: <a@example.net>", "exim", "mx"))
    assert head and head[0].to_dict()["client"] == "203.0.113.5"
    assert tail == ()


def test_reused_id_starts_a_new_lifecycle() -> None:
    """Exim ids encode time and pid; if one comes back after Completed it is a new message."""
    fmt = EximFormat()
    tracker = MessageTracker()
    lines = [
        "1tAbcD-0001Xy-Ab <= a@example.net H=(h) [203.0.113.5] P=esmtpa A=plain:bob S=9",
        "1tAbcD-0001Xy-Ab Completed",
        "1tAbcD-0001Xy-Ab <= www-data@example.com U=www-data P=local S=9",
    ]
    states = []
    for line in lines:
        for event in fmt.parse(_record(line)) or ():
            state = tracker.feed(event)
            if state is not None:
                states.append((state.origin, state.account, state.user))
    assert states[-1] == ("local_submission", "", "www-data")
    assert tracker.totals.received == 2


def test_bounce_is_a_notification_not_a_local_submission() -> None:
    fmt = EximFormat()
    tracker = MessageTracker()
    for line in SAMPLES[:5]:
        for event in fmt.parse(_record(line)) or ():
            tracker.feed(event)
    assert tracker.live["1tAbcE-0001Xy-Ac"].origin == "notification"


def test_hostile_lines_never_raise() -> None:
    rnd = random.Random(5)
    alphabet = ' []()<>:="\\,;@.-=*HPSATUFRI0123456789abcdefxyz'
    fmt = EximFormat()
    programs = ("exim", "exim4", "exim/reject", "exim/panic")
    seen = 0
    for sample in SAMPLES:
        for _ in range(300):
            cut = rnd.randrange(len(sample) + 1)
            mutated = list(sample[:cut])
            for _ in range(rnd.randrange(4)):
                if mutated:
                    mutated[rnd.randrange(len(mutated))] = rnd.choice(alphabet)
            text = "".join(mutated)
            for program in programs:
                fmt.parse(_record(text, program, "mx" if program == "exim4" else ""))
                seen += 1
    for n in range(200):
        junk = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(120)))
        fmt.parse(_record(junk))
        fmt.parse(_record(f"1tAbcD-0001Xy-Ab {junk}"))
        fmt.parse(_record(f"H={junk}"))
        fmt.parse(_record(f"x authenticator failed for {junk}"))
        seen += n
    assert seen


def test_long_hostile_lines_stay_linear() -> None:
    big = "[" * 65536
    fmt = EximFormat()
    start = datetime.now()
    for text in (
        f"1tAbcD-0001Xy-Ab <= {big}",
        f"1tAbcD-0001Xy-Ab <= a@b H=({big}) [203.0.113.5] P=esmtp S=1",
        f"H=({') [' * 20000}",
        f'SMTP protocol error in "{big}" H=(x) [203.0.113.5] y',
        f'1tAbcD-0001Xy-Ab => "{big}',
        f"1tAbcD-0001Xy-Ab ** a@b {' : ' * 20000}",
        f"x authenticator failed for ({') [' * 20000}",
    ):
        fmt.parse(_record(text))
    assert datetime.now() - start < timedelta(seconds=5)
