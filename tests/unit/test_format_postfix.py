"""PostfixFormat beyond the golden samples: routing, hostile input, random input.

The golden files say what each line shape means; these tests guard the two
properties no finite sample list can: every regular expression stays linear
on a 64 KiB line built to make it backtrack, and no input at all, however
mangled, makes the parser raise or invent a client that is not an address.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.formats import _postfix_delivery, _postfix_fields, _postfix_queue, format_for
from mailwarden.formats._postfix_fields import is_queue_id, namaddr
from mailwarden.formats.postfix import PostfixFormat
from mailwarden.model import Event, Record, Source

HOSTILE_LEN = 64 * 1024
LIMIT_S = 0.05
LAB_LOG = Path("/work/shared/samples/lab/postfix.log")

PATTERNS: list[re.Pattern[str]] = [
    value
    for module in (_postfix_fields, _postfix_queue, _postfix_delivery)
    for value in vars(module).values()
    if isinstance(value, re.Pattern)
]
# namaddr() builds its fallback patterns per delimiter set; these are all the sets in use.
CLOSERS = [
    _postfix_fields._close_re(delims, at_end)
    for delims, at_end in [
        ((), True),
        ((" ",), True),
        ((", ",), True),
        ((": ",), True),
        ((": SASL ",), False),
        ((" for service ",), False),
    ]
]
PATTERNS += CLOSERS
# How the parsers call each pattern. Anchored ones (match/fullmatch at a known
# offset) may start with an unbounded class; searched ones start with a literal
# ("]" or ">") and give up within a few characters of it.
SEARCHED = {_postfix_delivery._DELIVERY, *CLOSERS}

# Building blocks an attacker can repeat: every delimiter and field name the
# parsers look for, so that each find()/regex sees a maximum of near-misses.
FRAGMENTS = [
    "[",
    "]",
    ":",
    ": ",
    ", ",
    ";",
    "<",
    ">",
    " ",
    "1",
    "1.",
    "z",
    "]:1",
    "]:",
    "[1]",
    "unknown[192.0.2.1]",
    "]: SASL ",
    " from ",
    " from [",
    "from=<",
    "> to=<",
    "to=<",
    ", relay=",
    ", delay=1",
    ", delays=1/1/1/1",
    ", dsn=5.0.0",
    ", status=sent",
    ", orig_to=<",
    ">, size=1",
    ", nrcpt=1",
    "; from=<",
    "; proto=",
    "helo=<",
    ", sasl_username=",
    "client=",
    "auth=0/",
    " limit exceeded: ",
    " for service ",
]
PREFIXES = [
    "",
    "connect from ",
    "disconnect from ",
    "warning: ",
    "warning: unknown[192.0.2.1]: SASL ",
    "NOQUEUE: reject: RCPT from ",
    "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: ",
    "4D1E21A0B7: client=",
    "4D1E21A0B7: to=<",
    "4D1E21A0B7: from=<",
    "4D1E21A0B7: uid=1 from=<",
    "4D1E21A0B7: info: header X: ",
    "4D1E21A0B7: milter-reject: END-OF-MESSAGE from ",
    "4D1E21A0B7: reject: mime-error x: ",
    "warning: Connection rate limit exceeded: 1 from ",
    "CONNECT from [",
    "PREGREET 1 after 0 from [",
    "NOQUEUE: reject: RCPT from [",
    "COMMAND PIPELINING from [",
    "DNSBL rank 1 for [",
]
PROGRAMS = [
    "postfix/smtpd",
    "postfix/submission/smtpd",
    "postfix/postscreen",
    "postfix/cleanup",
    "postfix/qmgr",
    "postfix/pickup",
    "postfix/smtp",
    "postfix/bounce",
    "postfix/postsuper",
    "postfix-out/smtp",
    "postfix/local",
    "postfix/master",
]


def _record(program: str, message: str) -> Record:
    return Record(
        ts=datetime(2026, 3, 1, tzinfo=UTC),
        host="mx",
        program=program,
        pid=1,
        message=message,
        source=Source(file="test", line=1),
    )


def _fastest(fn: Callable[[], object], runs: int = 3) -> float:
    """Best of a few runs, so a busy CI machine does not fail a linear pattern."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _assert_clients_valid(events: object) -> None:
    assert events is None or isinstance(events, (list, tuple))
    for event in events or ():
        assert isinstance(event, Event)
        client = getattr(event, "client", None)
        if client is not None:
            assert str(ipaddress.ip_address(client)) == client


# --- routing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "claimed"),
    [
        ("postfix/smtpd", True),
        ("postfix/submission/smtpd", True),
        ("postfix-out/smtp", True),
        ("postfix", True),
        ("postfix-script", True),
        ("postfixadmin", False),
        ("dovecot", False),
        ("smtpd", False),
        ("policyd-spf", False),
    ],
)
def test_claims_by_syslog_name(program: str, claimed: bool) -> None:
    assert PostfixFormat().claims(program) is claimed


@pytest.mark.parametrize(
    ("program", "service"),
    [
        ("postfix/smtpd", "smtp"),
        ("postfix-in/smtpd", "smtp"),
        ("postfix/submission/smtpd", "submission"),
        ("postfix/smtps/smtpd", "smtps"),
        ("postfix-smo/submission/smtpd", "submission"),
    ],
)
def test_smtpd_service_comes_from_syslog_name(program: str, service: str) -> None:
    events = PostfixFormat().parse(_record(program, "connect from unknown[192.0.2.1]"))
    assert events is not None
    assert [getattr(e, "service", None) for e in events] == [service]


def test_unknown_daemon_is_unparsed() -> None:
    assert PostfixFormat().parse(_record("postfix/policy-spf", "anything")) is None


def test_registry_routes_postfix_programs_here() -> None:
    fmt = format_for("postfix/submission/smtpd")
    assert fmt is not None
    assert fmt.name == "postfix"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("94B6920C940", True),
        ("4D1E2", False),
        ("44JCRG5tYPzCqt2", True),
        ("4bQz2H1Xyz3B", True),
        ("NOQUEUE", False),
        ("warning", False),
        ("statistics", False),
        ("authorization", False),
        ("BCDFGHJKLMNPQR", False),
        ("44JCRG5tYPzCqtz", False),
    ],
)
def test_queue_ids(token: str, expected: bool) -> None:
    assert is_queue_id(token) is expected


@pytest.mark.parametrize(
    ("text", "delims", "at_end", "expected"),
    [
        ("unknown[192.0.2.1]", (), True, ("unknown", "192.0.2.1")),
        ("unknown[192.0.2.1]:2525: x", (": ",), False, ("unknown", "192.0.2.1")),
        ("evil[203.0.113.1][192.0.2.1]: x", (": ",), False, ("evil[203.0.113.1]", "192.0.2.1")),
        (
            "a[203.0.113.1]b[192.0.2.1], x[203.0.113.2]",
            (", ",),
            True,
            ("a[203.0.113.1]b", "192.0.2.1"),
        ),
        ("host[IPv6:2001:db8::1]", (), True, ("host", "2001:db8::1")),
        ("unknown[unknown]", (), True, ("unknown", None)),
        ("no address here", (), True, None),
        ("x[203.0.113.1] trailing", (": ",), False, None),
    ],
)
def test_namaddr_takes_the_last_address_before_the_delimiter(
    text: str, delims: tuple[str, ...], at_end: bool, expected: tuple[str, str | None] | None
) -> None:
    got = namaddr(text, 0, delims, at_end)
    assert (got[:2] if got else None) == expected


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("postfix/smtpd", "disconnect from unknown[192.0.2.1] auth=0/" + "9" * 6000),
        ("postfix/smtpd", "disconnect from unknown[192.0.2.1] auth=\u00b2/\u00b3"),
        ("postfix/qmgr", "ABCDEF0123: from=<a>, size=" + "9" * 6000 + ", nrcpt=1 (queue active)"),
        ("postfix/qmgr", "ABCDEF0123: from=<a>, size=\u0661\u0662, nrcpt=1 (queue active)"),
        ("postfix/pickup", "ABCDEF0123: uid=" + "9" * 6000 + " from=<a>"),
        ("postfix/pickup", "ABCDEF0123: uid=\u00b2 from=<a>"),
        ("postfix/smtp", "ABCDEF0123: to=<a>, relay=x, delay=" + "9" * 6000 + ", status=sent (ok)"),
        ("postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: \u00b2\u00b2\u00b2 x; to=<a>"),
    ],
)
def test_numbers_in_server_slots_never_crash(program: str, message: str) -> None:
    """int() refuses over 4300 digits and some Unicode digits that str.isdigit() accepts."""
    _assert_clients_valid(PostfixFormat().parse(_record(program, message)))


def test_lab_sample_is_fully_understood() -> None:
    if not LAB_LOG.exists():
        pytest.skip("lab sample not present")
    line_re = re.compile(r"^\w{3} [ \d]\d [\d:]{8} \S+ ([^\[:]+)\[\d+\]: (.*)$")
    fmt = PostfixFormat()
    for line in LAB_LOG.read_text(encoding="utf-8").splitlines():
        m = line_re.match(line)
        assert m, line
        assert fmt.parse(_record(m[1], m[2])) is not None, line


# --- hostile input -------------------------------------------------------------------


def test_every_pattern_is_collected() -> None:
    assert len(PATTERNS) >= 5
    assert set(PATTERNS) >= SEARCHED


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.pattern[:40])
@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_patterns_are_linear_on_hostile_lines(pattern: re.Pattern[str], fragment: str) -> None:
    hostile = (fragment * (HOSTILE_LEN // len(fragment) + 1))[:HOSTILE_LEN]
    run = pattern.search if pattern in SEARCHED else pattern.match
    elapsed = _fastest(lambda: (run(hostile), run(hostile, 1), pattern.fullmatch(hostile)))
    assert elapsed < LIMIT_S, f"{pattern.pattern!r} took {elapsed * 1000:.1f} ms"


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_parser_is_linear_on_hostile_lines(prefix: str, fragment: str) -> None:
    fmt = PostfixFormat()
    body = (fragment * (HOSTILE_LEN // len(fragment) + 1))[:HOSTILE_LEN]
    records = [_record(program, prefix + body) for program in PROGRAMS]

    def run() -> None:
        for record in records:
            _assert_clients_valid(fmt.parse(record))

    elapsed = _fastest(run, runs=2)
    assert elapsed < LIMIT_S * len(PROGRAMS), f"{prefix!r}+{fragment!r}: {elapsed * 1000:.1f} ms"


# --- random input --------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        *FRAGMENTS,
        *PREFIXES,
        "192.0.2.7",
        "2001:db8::7",
        "999.1.1.1",
        "IPv6:",
        "%eth0",
        "NOQUEUE",
        "94B6920C940",
        "reject",
        "hold",
        "status=deferred",
        "\\r\\n",
        "\x00",
        "é",
    ]
)
_MESSAGES = st.lists(st.one_of(_TOKENS, st.text(max_size=12)), max_size=24).map("".join)


@settings(max_examples=600, deadline=None)
@given(
    program=st.sampled_from([*PROGRAMS, "postfix/virtual", "postfix/lmtp", "postfix/pipe"]),
    prefix=st.sampled_from(PREFIXES),
    message=_MESSAGES,
)
def test_random_messages_never_raise_or_invent_clients(program: str, prefix: str, message: str) -> None:
    _assert_clients_valid(PostfixFormat().parse(_record(program, prefix + message)))
