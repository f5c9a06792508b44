"""Dovecot format: what the golden files cannot show.

Golden samples pin single lines; here are the properties behind them: both
framings give the same events, the client address survives any user name or
password an attacker can type, no line is slow, and no input raises.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.formats.base import normalise_ip
from mailwarden.formats.dovecot import DovecotFormat
from mailwarden.model import AuthFailed, AuthSucceeded, Event, Record, Source

FMT = DovecotFormat()
TS = datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC)
REAL = "203.0.113.5"
SMUGGLED = "192.0.2.66"


def _record(program: str, message: str, host: str = "") -> Record:
    return Record(TS, host, program, None, message, Source("test.log", 1))


def _events(program: str, message: str) -> list[dict[str, object]]:
    events = FMT.parse(_record(program, message))
    assert events is not None, f"unparsed: {program}: {message}"
    return [_strip(e) for e in events]


def _strip(event: Event) -> dict[str, object]:
    out = event.to_dict()
    del out["source"], out["host"]
    return out


# --- claims ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        "dovecot",
        "imap-login",
        "pop3-login",
        "submission-login",
        "managesieve-login",
        "auth",
        "auth-worker(1234)",
        "auth(default)",
        "auth(alice@lab.test,203.0.113.5,sasl:plain)<XwikeEVhgqR/AAAB>",
        "auth-worker(alice,203.0.113.5)<4001><XwikeEVhgqR/AAAB>",
        "imap(alice@lab.test)<7362><XwikeEVhgqR/AAAB>",
        "pop3(bob)",
        "lmtp(alice@lab.test)<4242><wNx1GE9hkmQSEAAA>",
        "master",
        "anvil",
        "config",
        "log",
        "stats",
        "dict",
        "indexer-worker(alice)<1><s>",
        "quota-status",
        "doveadm",
        "lda(bob)",
        "deliver(bob)",
        "dsync",
        "dovecot-auth",
    ],
)
def test_claims_dovecot_programs(program: str) -> None:
    assert FMT.claims(program)


@pytest.mark.parametrize("program", ["postfix/smtpd", "sshd", "imapd", "dovecotx", "exim", ""])
def test_leaves_other_programs(program: str) -> None:
    assert not FMT.claims(program)


# --- framing ---------------------------------------------------------------------------

SAME_LINE = [
    ("imap-login", "Login: user=<a@lab.test>, method=PLAIN, rip=203.0.113.5, lip=192.0.2.1"),
    ("pop3-login", "Disconnected (auth failed, 2 attempts in 4 secs): user=<a>, rip=203.0.113.5"),
    ("auth", "passwd-file(a@lab.test,203.0.113.5,<XwikeEVhgqR/AAAB>): Password mismatch"),
    ("auth-worker(304)", "pam(a,203.0.113.5): pam_authenticate() failed: Authentication failure"),
    ("imap(a)<1><s>", "Disconnected: Logged out in=12 out=477"),
]


@pytest.mark.parametrize(("program", "message"), SAME_LINE)
def test_log_path_and_syslog_give_the_same_events(program: str, message: str) -> None:
    own_file = _events(program, f"Info: {message}")
    assert own_file == _events("dovecot", f"{program}: {message}")
    assert own_file == _events(program, message)  # a log_path without levels


def test_events_carry_time_host_and_source() -> None:
    record = _record("dovecot", f"auth: passwd-file(a,{REAL}): unknown user", host="mx")
    (event,) = FMT.parse(record) or ()
    assert (event.ts, event.host, event.source) == (TS, "mx", record.source)


@pytest.mark.parametrize(
    ("program", "message"),
    [
        # the framer cut the 2.4 prefix at a ": " inside the user name
        ("auth(a b", f"c,{REAL},sasl:plain)<s>: Info: sql: unknown user"),
        ("auth(a b: c,203.0.113.5,sasl:plain)<s>", "Info: sql: unknown user"),
        ("dovecot", f"auth(a b: c,{REAL},sasl:plain)<s>: sql: unknown user"),
    ],
)
def test_modern_auth_prefix_survives_any_cut(program: str, message: str) -> None:
    (event,) = _events(program, message)
    assert (event["client"], event["user"], event["method"]) == (REAL, "a b: c", "PLAIN")


# --- the client is Dovecot's address, whatever the attacker typed ----------------------

# What str_sanitize() lets through: anything but control characters.
typed = st.text(st.characters(min_codepoint=32, exclude_categories=("Cs",)), max_size=80)
fragments = st.sampled_from(
    [
        ",",
        ")",
        "): ",
        ">",
        ", ",
        "<",
        "(",
        ": ",
        "rip=",
        "lip=",
        "user=<",
        ", rip=",
        SMUGGLED,
        "Password mismatch",
        "unknown user",
        " (given password: ",
        "sasl:plain",
        "<s>",
        "Info: ",
    ]
)
hostile = st.lists(st.one_of(typed, fragments), max_size=12).map("".join)


@settings(max_examples=300)
@given(user=hostile, mech=hostile)
def test_login_line_client_is_the_last_rip(user: str, mech: str) -> None:
    message = (
        f"Disconnected (auth failed, 3 attempts in 9 secs): user=<{user[:80]}>, "
        f"method={mech.upper()[:64]}, rip={REAL}, lip=192.0.2.1, secured, session=<Xwike>"
    )
    (event,) = _events("imap-login", message)
    assert (event["client"], event["local"], event["attempts"]) == (REAL, "192.0.2.1", 3)


@settings(max_examples=300)
@given(user=hostile)
def test_login_success_client_is_the_last_rip(user: str) -> None:
    message = f"Login: user=<{user}>, method=PLAIN, rip={REAL}, lip=192.0.2.1, mpid=1, session=<S>"
    (event,) = _events("pop3-login", message)
    assert (event["client"], event["session"]) == (REAL, "S")


@settings(max_examples=300)
@given(user=hostile, password=hostile, modern=st.booleans())
def test_backend_client_is_dovecots_or_none(user: str, password: str, modern: bool) -> None:
    user = user[:64] or "?"
    if modern:
        program, message = f"auth({user},{REAL},sasl:plain)<s>", "Info: sql: Password mismatch"
    else:
        program, message = "auth", f"Info: passwd-file({user},{REAL},<s>): Password mismatch"
    message += f" (given password: {password})"
    events = FMT.parse(_record(program, message))
    assert events is not None
    (event,) = events
    assert isinstance(event, AuthFailed)
    assert event.client in (REAL, None)
    if event.client is None:
        assert event.user == ""  # an ambiguous line names nobody


# --- robustness ------------------------------------------------------------------------

programs = st.sampled_from(
    [
        "dovecot",
        "imap-login",
        "pop3-login",
        "auth",
        "auth-worker(1)",
        "imap(u)<1><s>",
        "master",
        "auth(u,192.0.2.1,sasl:plain)<s>",
        "auth-worker(u)<1><s>",
        "submission-login",
    ]
)
prefixes = st.sampled_from(
    [
        "",
        "Info: ",
        "imap-login: ",
        "auth: ",
        "auth(",
        "auth-worker(",
        "Login: user=<",
        "Disconnected (",
        "Login aborted: x (",
        "passwd-file(",
        "pam(",
        "conn unix:a (b): ",
    ]
)


@settings(max_examples=1000)
@given(program=programs, prefix=prefixes, body=hostile)
def test_random_lines_never_raise_and_name_only_real_addresses(program: str, prefix: str, body: str) -> None:
    events = FMT.parse(_record(program, prefix + body))
    for event in events or ():
        client = getattr(event, "client", None)
        assert client is None or normalise_ip(client) == client
        local = getattr(event, "local", None)
        assert local is None or normalise_ip(local) == local
        if isinstance(event, AuthFailed | AuthSucceeded):
            assert event.layer in ("frontend", "backend")


N = 64 * 1024


def _fill(unit: str, prefix: str = "", suffix: str = "") -> str:
    room = N - len(prefix) - len(suffix)
    return prefix + (unit * (room // len(unit) + 1))[:room] + suffix


HOSTILE_LINES = {
    "login_many_rips": ("imap-login", _fill(", rip=192.0.2.1", "Login: user=<")),
    "login_user_of_brackets": ("imap-login", _fill(">", "Info: Login: user=<", f", rip={REAL}")),
    "summary_open_parens": ("imap-login", _fill("(", "Disconnected ", ")")),
    "summary_many_groups": ("imap-login", _fill("(auth failed, 1 attempts)", "Disconnected ")),
    "summary_attempts": ("imap-login", _fill(", 1 attempt", "Disconnected (auth failed", "): ")),
    "summary_markers": ("imap-login", _fill(": user=<: method=: rip=", "Disconnected (x)")),
    "summary_proxy_dest": ("imap-login", _fill(" to ", "Disconnected (proxy dest ", ")")),
    "backend_closes": ("auth", _fill("): ", "Info: passwd-file(")),
    "backend_verdicts": ("auth", _fill("): Password mismatch (given password: ", "pam(a,")),
    "backend_commas": ("auth", _fill(",", "passwd-file(", "): Password mismatch")),
    "backend_pam": ("auth-worker(1)", _fill("): pam_authenticate() failed: ", "pam(")),
    "worker_conn": ("auth-worker(1)", _fill("(", "Info: conn unix:x (")),
    "modern_tails": ("dovecot", _fill(")<x>: request [1]: Info: sql: ", "auth(")),
    "modern_brackets": ("dovecot", _fill(")<", "auth(")),
    "syslog_colons": ("dovecot", _fill(": ", "imap-login")),
    "long_address": ("imap-login", _fill("1", "Login: user=<a>, rip=")),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_hostile_64k_line_is_fast(name: str) -> None:
    program, message = HOSTILE_LINES[name]
    record = _record(program, message)
    best = float("inf")
    for _ in range(3):  # best of three: a scheduler hiccup is not a regex blow-up
        start = time.perf_counter()
        FMT.parse(record)
        best = min(best, time.perf_counter() - start)
    assert best < 0.05, f"{name}: {best * 1000:.1f} ms"
